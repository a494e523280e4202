#!/usr/bin/env node
// find_scu.mjs - a test modality that queries the broker's Modality Worklist (C-FIND).
//
// Why it exists: DCMTK findscu is one client; conformance needs a second, independent
// DIMSE stack (dcmjs-dimse on dcmjs) that encodes the query and parses the answers
// itself, so an error shared by the broker and one client cannot pass unnoticed.
//
//   node find_scu.mjs [--host H] [--port P] [--calling-ae A] [--called-ae B]
//                     [--timeout SECONDS] --dataset FILE | --serve
//   --dataset: the query, JSON object of DICOM keyword -> value (dcmjs "naturalized" form; a sequence
//            is a list of items, [] a zero-item sequence), sent exactly as given: no
//            default keys are added (createWorklistFindRequest would add ~40).
//
// Prints one JSON line per response, pending ones first:
//   {status, identifier, raw}
//   identifier: the answer as dcmjs decoded it, in the DICOM JSON model (PS3.18 F.2),
//               no Value where the element was empty on the wire;
//               null when the response carried none.
//   raw: the undecoded bytes (hex) of every PN and of Specific Character Set, by path
//        ("PatientName", "ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName"),
//        read by the walker below. Needed because dcmjs decodes with the first
//        Specific Character Set term only and then rewrites the term to ISO_IR 192.
// --serve: queries as JSON lines on stdin instead, see serve() below.
// Exit 0 once the final response came (whatever its status); 2 otherwise (reason on stderr).
// Query text is written as UTF-8 whatever SpecificCharacterSet says, so non-ASCII text
// must be ISO_IR 192 or pre-escaped 7-bit ISO 2022 text (tests/support/dimse.py does that).

import dcmjs from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { createInterface } from 'node:readline';
import { exchange, exchangeOnce, fail, parseCommandLine, readElements } from './dimse_client.mjs';

const { Dataset } = dimse;
const { CFindRequest } = dimse.requests;
const { SopClass, Status, TransferSyntax } = dimse.constants;
const { DicomMetaDictionary } = dcmjs.data;
const NAME = 'find_scu';
const UNDEFINED_LENGTH = 0xffffffff;
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

// Keep each received identifier's bytes: dcmjs-dimse decodes them in this method.
const decode = Dataset.prototype._fromElementsBuffer;
Dataset.prototype._fromElementsBuffer = function keepBytes(buffer, ...rest) {
  this.encoded = Buffer.from(buffer);
  return decode.call(this, buffer, ...rest);
};

function dictionaryEntry(group, element) {
  const hex = (n) => n.toString(16).padStart(4, '0').toUpperCase();
  return DicomMetaDictionary.dictionary[`(${hex(group)},${hex(element)})`];
}

/** Walk a little-endian dataset with defined lengths (the broker writes those); call
 * `visit(path, vr, bytes)` for every element, items of sequences included. A path
 * names each element twice: by keywords (`A[0].B`), and by tags as the DICOM JSON
 * model keys it (`00400100[0].00080060`). */
function walk(bytes, explicit, prefix, visit) {
  let at = 0;
  while (at < bytes.length) {
    const group = bytes.readUInt16LE(at);
    const element = bytes.readUInt16LE(at + 2);
    const entry = dictionaryEntry(group, element);
    let vr = entry?.vr ?? 'UN';
    let length;
    if (explicit) {
      vr = bytes.toString('latin1', at + 4, at + 6);
      length = LONG_VRS.has(vr) ? bytes.readUInt32LE(at + 8) : bytes.readUInt16LE(at + 6);
      at += LONG_VRS.has(vr) ? 12 : 8;
    } else {
      length = bytes.readUInt32LE(at + 4);
      at += 8;
    }
    if (length === UNDEFINED_LENGTH) fail(NAME, 'undefined lengths are not supported by the byte walker');
    const value = bytes.subarray(at, at + length);
    const tag = ((group << 16) | element).toString(16).padStart(8, '0').toUpperCase();
    const path = { name: `${prefix.name}${entry?.name ?? tag}`, tag: `${prefix.tag}${tag}` };
    if (vr === 'SQ') walkItems(value, explicit, path, visit);
    else visit(path, vr, value);
    at += length;
  }
}

function walkItems(bytes, explicit, path, visit) {
  for (let at = 0, index = 0; at < bytes.length; index += 1) {
    const length = bytes.readUInt32LE(at + 4); // item tag (FFFE,E000), then its length
    if (length === UNDEFINED_LENGTH) fail(NAME, 'undefined lengths are not supported by the byte walker');
    const prefix = { name: `${path.name}[${index}].`, tag: `${path.tag}[${index}].` };
    walk(bytes.subarray(at + 8, at + 8 + length), explicit, prefix, visit);
    at += 8 + length;
  }
}

/** Remove `Value` from the elements that were empty on the wire: dcmjs decodes an
 * empty US as 0 and an empty DS as null, where the JSON model has no Value. */
function dropEmptyValues(json, empty, prefix = '') {
  for (const [tag, element] of Object.entries(json)) {
    const path = `${prefix}${tag}`;
    if (element.vr === 'SQ') (element.Value ?? []).forEach((item, i) => dropEmptyValues(item, empty, `${path}[${i}].`));
    else if (empty.has(path)) delete element.Value;
  }
  return json;
}

/** The answer in the DICOM JSON model, and the raw PN / Specific Character Set bytes. */
function describe(dataset) {
  const raw = {};
  const empty = new Set();
  const explicit = dataset.getTransferSyntaxUid() !== TransferSyntax.ImplicitVRLittleEndian;
  walk(dataset.encoded, explicit, { name: '', tag: '' }, (path, vr, value) => {
    if (value.length === 0) empty.add(path.tag);
    if (vr === 'PN' || path.name === 'SpecificCharacterSet') raw[path.name] = value.toString('hex');
  });
  const json = DicomMetaDictionary.denaturalizeDataset(dataset.getElements());
  return { identifier: dropEmptyValues(json, empty), raw };
}

function query(elements) {
  const request = new CFindRequest();
  request.setAffectedSopClassUid(SopClass.ModalityWorklistInformationModelFind);
  request.setDataset(new Dataset(elements));
  return request;
}

/** Print each response as a JSON line; true for the final one. */
function print(response) {
  const dataset = response.getDataset();
  const answer = dataset?.encoded !== undefined ? describe(dataset) : { identifier: null, raw: {} };
  process.stdout.write(JSON.stringify({ status: response.getStatus(), ...answer }) + '\n');
  return (response.getStatus() & 0xff00) !== Status.Pending; // FF00 and FF01 are pending
}

/** --serve: one query per stdin line, {port, callingAe, dataset}, each on its own
 * association, its responses followed by {"end": true} (with "error" if it failed).
 * Saves the ~0.3 s CPU Node spends loading dcmjs for every query. */
async function serve(command) {
  for await (const line of createInterface({ input: process.stdin })) {
    const { port, callingAe, dataset } = JSON.parse(line);
    const opts = { ...command.opts, port: String(port), 'calling-ae': callingAe };
    const end = await exchange(query(dataset), { ...command, opts }, print).then(
      () => ({ end: true }),
      (e) => ({ end: true, error: e.message })
    );
    process.stdout.write(JSON.stringify(end) + '\n');
  }
}

const command = parseCommandLine(NAME, { dataset: { type: 'string' }, serve: { type: 'boolean' } });
if (command.opts.serve) {
  await serve(command);
} else {
  if (!command.opts.dataset) fail(NAME, '--dataset FILE (the query) or --serve is required');
  exchangeOnce(NAME, query(readElements(NAME, command.opts.dataset)), command, print);
}
