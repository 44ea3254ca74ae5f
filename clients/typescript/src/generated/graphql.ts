/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** Why a credential changed. */
export type CredentialChangeKind =
  /** The marketplace rejected the newest version: stop using it until a new one is stored. */
  | 'REJECTED'
  /** A new version was made from a kept older one (a rollback). */
  | 'RESTORED'
  /** A new version was stored: fetch the credential (or a token) again. */
  | 'STORED';

/** The two kinds of seller credentials. */
export type CredentialKind =
  /** The legacy Marketplace API: the login `<seller login>-api` and its password. */
  | 'MARKETPLACE_API'
  /** The Octopia seller API: OAuth client id and secret, plus the seller id sent in the `SellerId` header. */
  | 'OCTOPIA';

/** A new seller account. */
export type RegisterSellerAccountInput = {
  /** A human-readable name of the shop (1 to 200 characters). */
  displayName: string;
  /** The seller login (letters, digits, `.`, `_`, `-`; 2 to 64 characters; without the `-api` suffix). */
  login: string;
};

/** Whether credentials of a seller may be issued. */
export type SellerStatus =
  /** Credentials are issued. */
  | 'ACTIVE'
  /** Deactivated: nothing is issued for this seller until it is reactivated. Nothing is deleted. */
  | 'INACTIVE';

/** A new Marketplace API password for a seller. */
export type StoreApiCredentialInput = {
  /** The password of `<seller login>-api`: 1 to 128 characters, no control characters. */
  password: string;
  /** The seller login. */
  sellerLogin: string;
  /**
   * Ask Cdiscount first: a rejected password is not stored (`BAD_USER_INPUT`, reason `MARKETPLACE_REJECTED`),
   * and an unreachable marketplace stores nothing (`UPSTREAM_UNAVAILABLE`).
   */
  verify?: boolean;
};

export type ViewerQueryVariables = Exact<{ [key: string]: never; }>;


export type ViewerQuery = { viewer: { issuer: string, subject: string, scopes: Array<string>, allSellers: boolean, sellers: Array<string>, frozen: boolean } };

export type SellersQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type SellersQuery = { sellerAccounts: { edges: Array<{ cursor: string, node: { id: string, login: string, apiLogin: string, displayName: string, status: SellerStatus, updatedAt: string } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type RegisterSellerMutationVariables = Exact<{
  input: RegisterSellerAccountInput;
}>;


export type RegisterSellerMutation = { registerSellerAccount: { id: string, login: string, apiLogin: string, status: SellerStatus } };

export type StoreApiCredentialMutationVariables = Exact<{
  input: StoreApiCredentialInput;
}>;


export type StoreApiCredentialMutation = { storeApiCredential: { warnings: Array<string>, credential: { version: number, keyVersion: number } } };

export type IssueApiCredentialMutationVariables = Exact<{
  sellerLogin: string;
  purpose: string;
}>;


export type IssueApiCredentialMutation = { issueApiCredential: { sellerLogin: string, apiLogin: string, password: string, version: number, issuedAt: string } };

export type FreezeVaultMutationVariables = Exact<{
  reason: string;
}>;


export type FreezeVaultMutation = { freezeVault: { frozen: boolean, frozenBy: string | null, frozenAt: string | null, reason: string | null } };

export type UnfreezeVaultMutationVariables = Exact<{ [key: string]: never; }>;


export type UnfreezeVaultMutation = { unfreezeVault: { frozen: boolean } };

export type CredentialChangedSubscriptionVariables = Exact<{
  sellerLogin?: string | null | undefined;
  after?: string | null | undefined;
}>;


export type CredentialChangedSubscription = { credentialChanged: { cursor: string, sellerLogin: string, kind: CredentialKind, version: number, change: CredentialChangeKind, changedBy: string, occurredAt: string } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const ViewerDocument = new TypedDocumentString(`
    query Viewer {
  viewer {
    issuer
    subject
    scopes
    allSellers
    sellers
    frozen
  }
}
    `, {"hash":"03fcc463ea176de5ca6f63d6a687c9c5afa802a57c752408b03bfb7ff38c5c42"}) as unknown as TypedDocumentString<ViewerQuery, ViewerQueryVariables>;
export const SellersDocument = new TypedDocumentString(`
    query Sellers($first: Int, $after: String) {
  sellerAccounts(first: $first, after: $after) {
    edges {
      cursor
      node {
        id
        login
        apiLogin
        displayName
        status
        updatedAt
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `, {"hash":"5155f4640522459309c1515dcc7c40d6dcd80a71126e36449ec7a13d4bf78618"}) as unknown as TypedDocumentString<SellersQuery, SellersQueryVariables>;
export const RegisterSellerDocument = new TypedDocumentString(`
    mutation RegisterSeller($input: RegisterSellerAccountInput!) {
  registerSellerAccount(input: $input) {
    id
    login
    apiLogin
    status
  }
}
    `, {"hash":"c537edfc0f89ecdf858cfc391839f021f7f20cf8151cd3107118875c80fc06ba"}) as unknown as TypedDocumentString<RegisterSellerMutation, RegisterSellerMutationVariables>;
export const StoreApiCredentialDocument = new TypedDocumentString(`
    mutation StoreApiCredential($input: StoreApiCredentialInput!) {
  storeApiCredential(input: $input) {
    credential {
      version
      keyVersion
    }
    warnings
  }
}
    `, {"hash":"10258ce883c991d5b655f207f5a717d3cacc1b89619dae77f7e6e9e8eed7d2df"}) as unknown as TypedDocumentString<StoreApiCredentialMutation, StoreApiCredentialMutationVariables>;
export const IssueApiCredentialDocument = new TypedDocumentString(`
    mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) {
  issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) {
    sellerLogin
    apiLogin
    password
    version
    issuedAt
  }
}
    `, {"hash":"23a3540c9029fff3f044b581cab1b7fb3d618ff648857b52c61f9f687ff75776"}) as unknown as TypedDocumentString<IssueApiCredentialMutation, IssueApiCredentialMutationVariables>;
export const FreezeVaultDocument = new TypedDocumentString(`
    mutation FreezeVault($reason: String!) {
  freezeVault(reason: $reason) {
    frozen
    frozenBy
    frozenAt
    reason
  }
}
    `, {"hash":"dce8f6e1b786674dd39ce7613d43398771fb6955ddd03e18bbb86aeb2e1cb842"}) as unknown as TypedDocumentString<FreezeVaultMutation, FreezeVaultMutationVariables>;
export const UnfreezeVaultDocument = new TypedDocumentString(`
    mutation UnfreezeVault {
  unfreezeVault {
    frozen
  }
}
    `, {"hash":"a57e08dbd21ca830aba0c8a9137770b57809233d2e652842c4ba589428df336d"}) as unknown as TypedDocumentString<UnfreezeVaultMutation, UnfreezeVaultMutationVariables>;
export const CredentialChangedDocument = new TypedDocumentString(`
    subscription CredentialChanged($sellerLogin: String, $after: String) {
  credentialChanged(sellerLogin: $sellerLogin, after: $after) {
    cursor
    sellerLogin
    kind
    version
    change
    changedBy
    occurredAt
  }
}
    `, {"hash":"ee1faba6eca7fae901ed9ab9ae0b88e5159b6c4f62cccf57f5fc947ed05a75c0"}) as unknown as TypedDocumentString<CredentialChangedSubscription, CredentialChangedSubscriptionVariables>;