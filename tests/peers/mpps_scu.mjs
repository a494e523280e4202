#!/usr/bin/env node
// mpps_scu.mjs - a test modality that talks DIMSE to the broker's MPPS SCP.
//
// Why it exists: the broker is built on pynetdicom, so testing it only with
// pynetdicom clients would let encoding bugs shared by both ends go unnoticed.
// This peer uses an independent DIMSE stack (dcmjs-dimse, on dcmjs) to send
// C-ECHO and Modality Performed Procedure Step N-CREATE / N-SET requests.
//
//   node mpps_scu.mjs [--host H] [--port P] [--calling-ae A] [--called-ae B]
//                     [--timeout SECONDS] <op> [--uid UID] [--dataset FILE]
//   op: echo | create (--uid omitted or "" lets the SCP assign it) | set (--uid required)
//   --dataset: JSON object of DICOM keyword -> value (dcmjs "naturalized" form),
//              sent as-is as the N-CREATE attribute list / N-SET modification list.
//
// Prints one JSON line {status, affectedSopInstanceUid, errorComment, errorId}
// and exits 0 once a response arrived (whatever its status); exits 2 with the
// reason on stderr if the association was rejected or aborted, the presentation
// context was refused, or no response came within --timeout seconds.
// Note: dcmjs writes every text value as UTF-8, whatever SpecificCharacterSet says,
// so non-ASCII text arrives intact only with "ISO_IR 192" (a warning says so).
// 7-bit ISO 2022 text (e.g. pre-escaped ISO-2022-JP under ["", "ISO 2022 IR 87"]) passes as is.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import dimse from 'dcmjs-dimse';

const { Client, Dataset, log } = dimse;
const { CEchoRequest, NCreateRequest, NSetRequest } = dimse.requests;
const MPPS_SOP_CLASS = '1.2.840.10008.3.1.2.3.3';

function fail(reason) {
  process.stderr.write(`mpps_scu: ${reason}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '11112' },
      'calling-ae': { type: 'string', default: 'MODALITY1' },
      'called-ae': { type: 'string', default: 'BROKER' },
      timeout: { type: 'string', default: '10' },
      uid: { type: 'string' },
      dataset: { type: 'string' },
    },
  });
} catch (e) {
  fail(e.message);
}
const opts = args.values;
const op = args.positionals[0];
const timeoutMs = Number(opts.timeout) * 1000;
if (!(timeoutMs > 0)) fail(`bad --timeout ${opts.timeout}`);

let request;
if (op === 'echo') {
  request = new CEchoRequest();
} else if (op === 'create') {
  request = new NCreateRequest(MPPS_SOP_CLASS, opts.uid || undefined);
  // No UID given: leave (0000,1000) out of the command so the SCP assigns one.
  if (!opts.uid) delete request.getCommandDataset().getElements().AffectedSOPInstanceUID;
} else if (op === 'set') {
  if (!opts.uid) fail('set needs --uid');
  request = new NSetRequest(MPPS_SOP_CLASS, opts.uid);
} else {
  fail(`unknown op ${JSON.stringify(op)} (expected echo, create or set)`);
}
if (op !== 'echo' && opts.dataset) {
  try {
    const elements = JSON.parse(readFileSync(opts.dataset, 'utf8'));
    request.setDataset(new Dataset(elements));
    const charset = [elements.SpecificCharacterSet ?? ''].flat().join('\\');
    if (charset !== 'ISO_IR 192' && /[^\x00-\x7f]/.test(JSON.stringify(elements))) {
      process.stderr.write(`mpps_scu: warning: non-ASCII text is sent as UTF-8, not as '${charset}'\n`);
    }
  } catch (e) {
    fail(`cannot read dataset ${opts.dataset}: ${e.message}`);
  }
}

log.setLevel('silent'); // keep stdout for the single JSON line
let answered = false;

request.on('response', (response) => {
  if (answered) return;
  answered = true;
  const command = response.getCommandDataset();
  const uid = response.getAffectedSopInstanceUid() || request.getAffectedSopInstanceUid()
    || request.getRequestedSopInstanceUid() || null;
  process.stdout.write(JSON.stringify({
    status: response.getStatus(),
    affectedSopInstanceUid: uid,
    errorComment: response.getErrorComment() || null, // (0000,0902)
    errorId: command.getElement('ErrorID') ?? null, // (0000,0903)
  }) + '\n');
});

const client = new Client();
client.addRequest(request);
client.on('associationAccepted', (association) => {
  if (!association.getAcceptedPresentationContextFromRequest(request)) {
    const sopClass = request.getAffectedSopClassUid() || request.getRequestedSopClassUid();
    fail(`presentation context for SOP class ${sopClass} was not accepted`);
  }
});
client.on('associationRejected', (r) => {
  fail(`association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`);
});
client.on('networkError', (e) => {
  if (!answered) fail(`network error: ${e.message}`);
});
client.on('closed', () => {
  if (!answered) fail('connection closed without a response (association aborted?)');
  process.exit(0);
});

setTimeout(() => {
  if (!answered) fail(`no response within ${opts.timeout} s`);
  process.exit(0); // response printed but the release did not complete: still a result
}, timeoutMs);

client.send(opts.host, Number(opts.port), opts['calling-ae'], opts['called-ae'], {
  connectTimeout: timeoutMs,
  associationTimeout: timeoutMs,
  pduTimeout: timeoutMs,
});
// The Client does not forward A-ABORT; listen on its network for a clear reason.
client.network?.on('abort', ({ source, reason }) => {
  if (!answered) fail(`association aborted (source ${source}, reason ${reason})`);
});
