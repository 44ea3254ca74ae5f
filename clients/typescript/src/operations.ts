// The operations this package ships. GraphQL Code Generator (`npm run generate`) reads them here and emits each as a
// typed document in src/generated/graphql.ts (`ViewerDocument`, ...: what the package exports) and as an entry of
// src/generated/persisted-documents.json, the manifest a server can accept as its only trusted documents.
import { graphql } from './generated/index.js';

/** Who the token is, what it may do, and whether the vault is frozen. Needs a valid token. */
export const ViewerQuery = graphql(`
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
`);

/** One page of the seller accounts the token reaches, ordered by login. */
export const SellersQuery = graphql(`
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
`);

/** Registers a seller account (`credentials:write`); `CONFLICT` when the login is taken. */
export const RegisterSellerMutation = graphql(`
  mutation RegisterSeller($input: RegisterSellerAccountInput!) {
    registerSellerAccount(input: $input) {
      id
      login
      apiLogin
      status
    }
  }
`);

/** Stores a new Marketplace API password (`credentials:write`); the answer holds metadata only. */
export const StoreApiCredentialMutation = graphql(`
  mutation StoreApiCredential($input: StoreApiCredentialInput!) {
    storeApiCredential(input: $input) {
      credential {
        version
        keyVersion
      }
      warnings
    }
  }
`);

/**
 * Issues a seller's Marketplace API password (`credentials:read`), audited with its purpose. `FROZEN` while the
 * vault is frozen, `FORBIDDEN` without the scope or the seller, `NOT_FOUND` for an unknown seller.
 */
export const IssueApiCredentialMutation = graphql(`
  mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) {
    issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) {
      sellerLogin
      apiLogin
      password
      version
      issuedAt
    }
  }
`);

/** Freezes the vault (`vault:freeze`): every operation that returns a secret answers `FROZEN` until unfrozen. */
export const FreezeVaultMutation = graphql(`
  mutation FreezeVault($reason: String!) {
    freezeVault(reason: $reason) {
      frozen
      frozenBy
      frozenAt
      reason
    }
  }
`);

/** Lifts the freeze (`vault:freeze`). */
export const UnfreezeVaultMutation = graphql(`
  mutation UnfreezeVault {
    unfreezeVault {
      frozen
    }
  }
`);

/**
 * Each change of the credentials of the sellers the token reaches (metadata only). Resume after a disconnection
 * with the last `cursor` received as `after`: the missed changes come first.
 */
export const CredentialChangedSubscription = graphql(`
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
`);
