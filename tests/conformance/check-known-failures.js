#!/usr/bin/env node
// check-known-failures.js SUMMARY_JSON KNOWN_FAILURES_TXT [OUT_JSON]
//
// Compares a run-ably-js.sh summary with the known-failures list. The list has one line per
// test, `<file> :: <full title> :: <one-line reason>`; blank lines and lines starting with `#`
// are ignored. A whole file that crashed or timed out is listed with the title
// `(file crash)` or `(file timeout)`. Only entries for files that were part of the run count.
// A reason that starts with `[flaky]` marks a test that fails only some of the time: it may fail
// or pass without a problem being reported (its passing is only noted).
//
// Exit status 1 (and a message per problem) when:
//   - a test failed that is not listed (a regression, or a new test to diagnose),
//   - a listed test passed (remove it from the list), or is pending,
//   - a listed test does not exist in its file any more (the list went stale),
//   - a file crashed or timed out and is not listed as such.
// Listed tests that were never reached (notrun, e.g. after a failed "before all" hook) are only noted.
'use strict';
const fs = require('fs');

const [summaryFile, listFile, outFile] = process.argv.slice(2);
if (!summaryFile || !listFile) {
  console.error('usage: check-known-failures.js SUMMARY_JSON KNOWN_FAILURES_TXT [OUT_JSON]');
  process.exit(2);
}
const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
const problems = [];

// --- the list ---
const listed = new Map(); // "file\0title" -> {file, title, reason, line}
fs.readFileSync(listFile, 'utf8').split('\n').forEach((raw, i) => {
  const line = raw.trim();
  if (!line || line.startsWith('#')) return;
  const parts = line.split(' :: ');
  if (parts.length < 3 || !parts[0] || !parts[parts.length - 1].trim()) {
    problems.push(`${listFile}:${i + 1}: malformed line (want "<file> :: <full title> :: <reason>")`);
    return;
  }
  const file = parts[0].trim(), title = parts.slice(1, -1).join(' :: '), reason = parts[parts.length - 1].trim();
  const k = file + '\0' + title;
  if (listed.has(k)) problems.push(`${listFile}:${i + 1}: duplicate entry for ${file} :: ${title}`);
  const flaky = /^\[flaky\]/i.test(reason);
  listed.set(k, { file, title, reason, flaky, line: i + 1 });
});

// --- the results ---
const runFiles = new Set(summary.files.map((f) => f.file));
const states = new Map(); // "file\0title" -> Set of states (titles can repeat, e.g. hook failures)
for (const t of summary.tests) {
  const k = t.file + '\0' + t.fullTitle;
  if (!states.has(k)) states.set(k, new Set());
  states.get(k).add(t.state);
}
for (const f of summary.files)
  if (f.status !== 'ok') {
    const k = f.file + '\0' + `(file ${f.status})`;
    if (!states.has(k)) states.set(k, new Set());
    states.get(k).add('failed');
  }

const unexpected = [], fixed = [], stale = [], notReached = [], known = [], flakyPassed = [];
for (const [k, s] of states) {
  if (!s.has('failed')) continue;
  const [file, title] = k.split('\0');
  if (listed.has(k)) known.push({ file, title, reason: listed.get(k).reason });
  else unexpected.push({ file, title });
}
for (const [k, e] of listed) {
  if (!runFiles.has(e.file)) continue;
  const s = states.get(k);
  if (!s) stale.push(e);
  else if (s.has('failed')) continue;
  else if (s.has('passed') && e.flaky) flakyPassed.push(e);
  else if (s.has('passed')) fixed.push({ ...e, state: 'passed' });
  else if (s.has('pending')) fixed.push({ ...e, state: 'pending' });
  else notReached.push(e);
}

for (const u of unexpected) problems.push(`UNEXPECTED FAILURE: ${u.file} :: ${u.title}`);
for (const f of fixed) problems.push(`LISTED BUT ${f.state.toUpperCase()} (remove line ${f.line}): ${f.file} :: ${f.title}`);
for (const s of stale) problems.push(`LISTED BUT NOT FOUND (line ${s.line}): ${s.file} :: ${s.title}`);
for (const f of flakyPassed) console.log(`note: listed as flaky and passed this run (line ${f.line}): ${f.file} :: ${f.title}`);
for (const n of notReached) console.log(`note: listed but not reached this run (line ${n.line}): ${n.file} :: ${n.title}`);
for (const p of problems) console.log(p);

const t = summary.totals;
const verdict = problems.length ? 'FAIL' : 'OK';
console.log(`known failures: ${known.length} failing as listed, ${unexpected.length} unexpected, ` +
  `${fixed.length} listed but not failing, ${flakyPassed.length} flaky passed, ${stale.length} stale, ${notReached.length} not reached`);
console.log(`${t.passed} passed, ${t.failed} failed, ${t.pending} pending, ${t.notrun} not run: ${verdict}`);
if (outFile)
  fs.writeFileSync(outFile, JSON.stringify({ verdict, totals: t, known, unexpected, fixed, flakyPassed, stale, notReached, problems }, null, 2) + '\n');
process.exit(problems.length ? 1 : 0);
