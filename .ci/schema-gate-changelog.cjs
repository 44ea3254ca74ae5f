// graphql-inspector's completion handler for .ci/schema-gate: passes when every breaking change is announced under
// `### Breaking` in the changelog's `## [Unreleased]` section (its path in backticks), fails naming the others.
const fs = require('node:fs');

/** The text under `### Breaking...` in `## [Unreleased]`, up to the next heading of level 2 or 3. */
function announced(changelog) {
  const lines = fs.readFileSync(changelog, 'utf8').split('\n');
  const start = lines.findIndex((line) => /^## \[Unreleased\]/i.test(line));
  if (start < 0) return '';
  let inBreaking = false;
  const kept = [];
  for (const line of lines.slice(start + 1)) {
    if (/^## /.test(line)) break;
    if (/^### /.test(line)) inBreaking = /^### Breaking\b/i.test(line);
    else if (inBreaking) kept.push(line);
  }
  return kept.join('\n');
}

module.exports = function onComplete({ breakingChanges }) {
  if (breakingChanges.length === 0) {
    console.log('schema gate: no breaking change against the released schema');
    return;
  }
  const changelog = process.env.CDVAULT_CHANGELOG;
  const text = announced(changelog);
  const missing = breakingChanges.filter((change) => !text.includes('`' + (change.path ?? change.type) + '`'));
  if (missing.length === 0) {
    console.log(`schema gate: ${breakingChanges.length} breaking change(s), each announced under Breaking in ${changelog}`);
    return;
  }
  console.error(`schema gate: ${missing.length} breaking change(s) not announced in ${changelog}.`);
  console.error('List each path in backticks under "### Breaking" in "## [Unreleased]" (docs/releasing.md):');
  for (const change of missing) console.error(`  \`${change.path ?? change.type}\`: ${change.message}`);
  process.exit(1);
};
