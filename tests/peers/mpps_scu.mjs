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

import dimse from 'dcmjs-dimse';
import { exchangeOnce, fail as failWith, parseCommandLine, readElements } from './dimse_client.mjs';

const { Dataset } = dimse;
const { CEchoRequest, NCreateRequest, NSetRequest } = dimse.requests;
const MPPS_SOP_CLASS = '1.2.840.10008.3.1.2.3.3';
const NAME = 'mpps_scu';
const fail = (reason) => failWith(NAME, reason);

const command = parseCommandLine(NAME, { uid: { type: 'string' }, dataset: { type: 'string' } });
const { opts } = command;
const op = command.positionals[0];

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
  const elements = readElements(NAME, opts.dataset);
  request.setDataset(new Dataset(elements));
  const charset = [elements.SpecificCharacterSet ?? ''].flat().join('\\');
  if (charset !== 'ISO_IR 192' && /[^\x00-\x7f]/.test(JSON.stringify(elements))) {
    process.stderr.write(`mpps_scu: warning: non-ASCII text is sent as UTF-8, not as '${charset}'\n`);
  }
}

exchangeOnce(NAME, request, command, (response) => {
  const uid = response.getAffectedSopInstanceUid() || request.getAffectedSopInstanceUid()
    || request.getRequestedSopInstanceUid() || null;
  process.stdout.write(JSON.stringify({
    status: response.getStatus(),
    affectedSopInstanceUid: uid,
    errorComment: response.getErrorComment() || null, // (0000,0902)
    errorId: response.getCommandDataset().getElement('ErrorID') ?? null, // (0000,0903)
  }) + '\n');
  return true;
});
