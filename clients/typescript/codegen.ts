// GraphQL Code Generator: types and typed documents for the operations under src/, from the checked-in schema.
// CDVAULT_CODEGEN_OUT lets CI generate into a scratch folder and compare it with the committed one.
import { createHash } from 'node:crypto';

import type { CodegenConfig } from '@graphql-codegen/cli';

const out = process.env.CDVAULT_CODEGEN_OUT ?? './src/generated/';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/**/*.ts', '!src/generated/**'],
  ignoreNoDocuments: false,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: {
        // The manifest (hash -> document) for the server's trusted-documents allow-list. Keys are the bare hex
        // sha256 of the document text, as Apollo's persisted-query extension sends it (`sha256Hash`).
        persistedDocuments: {
          mode: 'embedHashInDocument',
          hashAlgorithm: (document: string) => createHash('sha256').update(document).digest('hex'),
        },
        fragmentMasking: false,
      },
      config: {
        // Strings, not ASTs: a request needs no GraphQL parser or printer at run time.
        documentMode: 'string',
        enumsAsTypes: true,
        useTypeImports: true,
        // Relative imports with `.js`, as Node's ES modules (and tsc's NodeNext) need them.
        emitLegacyCommonJSImports: false,
        scalars: { DateTime: 'string', JSON: 'unknown' },
        strictScalars: true,
      },
    },
  },
};

export default config;
