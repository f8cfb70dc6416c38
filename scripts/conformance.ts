/**
 * `npm run conformance`: rebuilds test/conformance/vectors.json with golang-htcondor's own code
 * (Go and the Go module proxy needed). Commit the result; `npm test` checks the stand-in against it.
 */
import { writeFileSync } from 'node:fs';
import { conformanceCases } from '../test/conformance/cases.ts';
import { GOLANG_HTCONDOR, runRealParser, VECTORS_FILE } from '../test/conformance/real_parser.ts';

const cases = conformanceCases();
console.log(`running ${cases.length} submit descriptions through ${GOLANG_HTCONDOR} (the first run builds it)...`);
const run = runRealParser(cases);
if (!run.ok) {
  console.error(`conformance: ${run.why}; vectors.json was left as it is`);
  process.exit(1);
}
writeFileSync(VECTORS_FILE, JSON.stringify(run.vectors, null, 2) + '\n');
const errors = run.vectors.filter((v) => v.error !== undefined).length;
console.log(`wrote ${VECTORS_FILE}: ${run.vectors.length} vectors (${errors} refused by the parser)`);
