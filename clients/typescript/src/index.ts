// @cdvault/client: typed operations for the cdvault GraphQL API, its error codes, and a subscription helper.
export * from './errors.js';
export * from './http.js';
export * from './ws.js';
export * from './follow.js';
// The operations of src/operations.ts as typed documents (`ViewerDocument`, ...), with their result and
// variable types (`ViewerQuery`, `ViewerQueryVariables`, ...) and every type of the schema.
export * from './generated/graphql.js';
