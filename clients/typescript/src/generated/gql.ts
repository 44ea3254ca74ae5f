/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Viewer {\n    viewer {\n      issuer\n      subject\n      scopes\n      allSellers\n      sellers\n      frozen\n    }\n  }\n": typeof types.ViewerDocument,
    "\n  query Sellers($first: Int, $after: String) {\n    sellerAccounts(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          login\n          apiLogin\n          displayName\n          status\n          updatedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.SellersDocument,
    "\n  mutation RegisterSeller($input: RegisterSellerAccountInput!) {\n    registerSellerAccount(input: $input) {\n      id\n      login\n      apiLogin\n      status\n    }\n  }\n": typeof types.RegisterSellerDocument,
    "\n  mutation StoreApiCredential($input: StoreApiCredentialInput!) {\n    storeApiCredential(input: $input) {\n      credential {\n        version\n        keyVersion\n      }\n      warnings\n    }\n  }\n": typeof types.StoreApiCredentialDocument,
    "\n  mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) {\n    issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) {\n      sellerLogin\n      apiLogin\n      password\n      version\n      issuedAt\n    }\n  }\n": typeof types.IssueApiCredentialDocument,
    "\n  mutation FreezeVault($reason: String!) {\n    freezeVault(reason: $reason) {\n      frozen\n      frozenBy\n      frozenAt\n      reason\n    }\n  }\n": typeof types.FreezeVaultDocument,
    "\n  mutation UnfreezeVault {\n    unfreezeVault {\n      frozen\n    }\n  }\n": typeof types.UnfreezeVaultDocument,
    "\n  subscription CredentialChanged($sellerLogin: String, $after: String) {\n    credentialChanged(sellerLogin: $sellerLogin, after: $after) {\n      cursor\n      sellerLogin\n      kind\n      version\n      change\n      changedBy\n      occurredAt\n    }\n  }\n": typeof types.CredentialChangedDocument,
};
const documents: Documents = {
    "\n  query Viewer {\n    viewer {\n      issuer\n      subject\n      scopes\n      allSellers\n      sellers\n      frozen\n    }\n  }\n": types.ViewerDocument,
    "\n  query Sellers($first: Int, $after: String) {\n    sellerAccounts(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          login\n          apiLogin\n          displayName\n          status\n          updatedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.SellersDocument,
    "\n  mutation RegisterSeller($input: RegisterSellerAccountInput!) {\n    registerSellerAccount(input: $input) {\n      id\n      login\n      apiLogin\n      status\n    }\n  }\n": types.RegisterSellerDocument,
    "\n  mutation StoreApiCredential($input: StoreApiCredentialInput!) {\n    storeApiCredential(input: $input) {\n      credential {\n        version\n        keyVersion\n      }\n      warnings\n    }\n  }\n": types.StoreApiCredentialDocument,
    "\n  mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) {\n    issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) {\n      sellerLogin\n      apiLogin\n      password\n      version\n      issuedAt\n    }\n  }\n": types.IssueApiCredentialDocument,
    "\n  mutation FreezeVault($reason: String!) {\n    freezeVault(reason: $reason) {\n      frozen\n      frozenBy\n      frozenAt\n      reason\n    }\n  }\n": types.FreezeVaultDocument,
    "\n  mutation UnfreezeVault {\n    unfreezeVault {\n      frozen\n    }\n  }\n": types.UnfreezeVaultDocument,
    "\n  subscription CredentialChanged($sellerLogin: String, $after: String) {\n    credentialChanged(sellerLogin: $sellerLogin, after: $after) {\n      cursor\n      sellerLogin\n      kind\n      version\n      change\n      changedBy\n      occurredAt\n    }\n  }\n": types.CredentialChangedDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      issuer\n      subject\n      scopes\n      allSellers\n      sellers\n      frozen\n    }\n  }\n"): typeof import('./graphql.js').ViewerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Sellers($first: Int, $after: String) {\n    sellerAccounts(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          login\n          apiLogin\n          displayName\n          status\n          updatedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): typeof import('./graphql.js').SellersDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RegisterSeller($input: RegisterSellerAccountInput!) {\n    registerSellerAccount(input: $input) {\n      id\n      login\n      apiLogin\n      status\n    }\n  }\n"): typeof import('./graphql.js').RegisterSellerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation StoreApiCredential($input: StoreApiCredentialInput!) {\n    storeApiCredential(input: $input) {\n      credential {\n        version\n        keyVersion\n      }\n      warnings\n    }\n  }\n"): typeof import('./graphql.js').StoreApiCredentialDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) {\n    issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) {\n      sellerLogin\n      apiLogin\n      password\n      version\n      issuedAt\n    }\n  }\n"): typeof import('./graphql.js').IssueApiCredentialDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation FreezeVault($reason: String!) {\n    freezeVault(reason: $reason) {\n      frozen\n      frozenBy\n      frozenAt\n      reason\n    }\n  }\n"): typeof import('./graphql.js').FreezeVaultDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UnfreezeVault {\n    unfreezeVault {\n      frozen\n    }\n  }\n"): typeof import('./graphql.js').UnfreezeVaultDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription CredentialChanged($sellerLogin: String, $after: String) {\n    credentialChanged(sellerLogin: $sellerLogin, after: $after) {\n      cursor\n      sellerLogin\n      kind\n      version\n      change\n      changedBy\n      occurredAt\n    }\n  }\n"): typeof import('./graphql.js').CredentialChangedDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
