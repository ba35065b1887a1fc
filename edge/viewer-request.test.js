// Tests of the CloudFront viewer-request function: `node --test edge/` (node 18+, no npm packages).
// The function file is a plain CloudFront Functions script (no exports), so it is evaluated in a
// fresh context, as CloudFront does. tests/test_edge.py runs this file from pytest.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const source = fs.readFileSync(path.join(__dirname, 'viewer-request.js'), 'utf8');
const samples = JSON.parse(fs.readFileSync(path.join(__dirname, 'accept-samples.json'), 'utf8'));

function load() {
  const context = {};
  vm.runInNewContext(source + '\nthis.handler = handler; this.acceptClass = acceptClass;', context);
  return context;
}

const fn = load();

// A viewer request as CloudFront hands it to the function: lower-case header names, {value}.
function request(headers, querystring) {
  const h = {};
  for (const [name, value] of Object.entries(headers)) {
    h[name.toLowerCase()] = { value: value };
  }
  return {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '192.0.2.1' },
    request: { method: 'GET', uri: '/is/image/Shop/SKU', querystring: querystring || {}, headers: h, cookies: {} },
  };
}

function run(headers, querystring) {
  const out = fn.handler(request(headers, querystring));
  const h = out.headers;
  return { out: out, accept: h['x-is-accept'].value, dpr: h['x-is-dpr'].value, net: h['x-is-net'].value };
}

for (const s of samples) {
  test(`Accept of ${s.browser} -> ${s.class}`, () => {
    const headers = s.accept ? { Accept: s.accept } : {};
    assert.equal(run(headers).accept, s.class);
  });
}

test('the chosen browsers cover every class', () => {
  const classes = new Set(samples.map((s) => s.class));
  assert.deepEqual([...classes].sort(), ['avif', 'none', 'webp']);
});

test('DPR: Sec-CH-DPR first, then DPR, reduced to 1 | 1.5 | 2 | 3', () => {
  const cases = [
    ['1', '1'], ['1.2', '1'], ['1.25', '1.5'], ['1.5', '1.5'], ['1.75', '2'], ['2', '2'],
    ['2.625', '3'], ['2.75', '3'], ['3', '3'], ['3.5', '3'], ['4', '3'], ['0.5', '1'],
  ];
  for (const [value, expected] of cases) {
    assert.equal(run({ 'Sec-CH-DPR': value }).dpr, expected, `Sec-CH-DPR ${value}`);
    assert.equal(run({ DPR: value }).dpr, expected, `DPR ${value}`);
  }
  assert.equal(run({ 'Sec-CH-DPR': '3', DPR: '1' }).dpr, '3');
});

test('DPR: without a usable hint, CloudFront device detection, else 1', () => {
  assert.equal(run({}).dpr, '1');
  assert.equal(run({ 'CloudFront-Is-Mobile-Viewer': 'true' }).dpr, '2');
  assert.equal(run({ 'CloudFront-Is-Tablet-Viewer': 'true' }).dpr, '2');
  assert.equal(run({ 'CloudFront-Is-Mobile-Viewer': 'false', 'CloudFront-Is-Tablet-Viewer': 'false' }).dpr, '1');
  for (const bad of ['', 'abc', '0', '-2', 'NaN', 'Infinity', '1e9']) {
    assert.equal(run({ 'Sec-CH-DPR': bad }).dpr, '1', `Sec-CH-DPR ${JSON.stringify(bad)}`);
  }
  // A broken Sec-CH-DPR falls back to DPR, then to the device guess.
  assert.equal(run({ 'Sec-CH-DPR': 'x', DPR: '2' }).dpr, '2');
  assert.equal(run({ 'Sec-CH-DPR': 'x', 'CloudFront-Is-Mobile-Viewer': 'true' }).dpr, '2');
});

test('network: Save-Data, slow ECT or Downlink under 1 Mbit/s are slow', () => {
  assert.equal(run({}).net, 'fast');
  assert.equal(run({ 'Save-Data': 'on' }).net, 'slow');
  assert.equal(run({ 'Save-Data': 'ON ' }).net, 'slow');
  assert.equal(run({ 'Save-Data': 'off' }).net, 'fast');
  for (const ect of ['slow-2g', '2g', '3g']) {
    assert.equal(run({ ECT: ect }).net, 'slow', ect);
  }
  assert.equal(run({ ECT: '4g' }).net, 'fast');
  assert.equal(run({ Downlink: '0.35' }).net, 'slow');
  assert.equal(run({ Downlink: '1.5' }).net, 'fast');
  assert.equal(run({ Downlink: 'fast' }).net, 'fast');
  assert.equal(run({ ECT: '4g', Downlink: '0.4' }).net, 'slow');
});

test('client-sent x-is-* headers are overwritten, never trusted', () => {
  const r = run({ 'x-is-accept': 'avif', 'x-is-dpr': '7', 'x-is-net': 'warp', Accept: '*/*' });
  assert.deepEqual([r.accept, r.dpr, r.net], ['none', '1', 'fast']);
});

test('the query string and the URI are left exactly as the viewer sent them', () => {
  const qs = { $PDP$: { value: '' }, wid: { value: '400' }, fmt: { value: 'jpg', multiValue: [{ value: 'jpg' }, { value: 'png' }] } };
  const before = JSON.stringify(qs);
  const r = run({ Accept: 'image/avif' }, qs);
  assert.equal(r.out.querystring, qs);
  assert.equal(JSON.stringify(r.out.querystring), before);
  assert.deepEqual(Object.keys(r.out.querystring), ['$PDP$', 'wid', 'fmt']);
  assert.equal(r.out.uri, '/is/image/Shop/SKU');
});

test('other headers pass through untouched', () => {
  const r = run({ Accept: 'image/webp', 'User-Agent': 'curl/8', 'If-None-Match': '"abc"' });
  assert.equal(r.out.headers['user-agent'].value, 'curl/8');
  assert.equal(r.out.headers['if-none-match'].value, '"abc"');
  assert.equal(r.out.headers.accept.value, 'image/webp');
});

test('within CloudFront Functions limits: 10 KB of code, no modules', () => {
  assert.ok(Buffer.byteLength(source, 'utf8') < 10240);
  assert.ok(!/\brequire\s*\(|\bimport\s|\bexport\s/.test(source));
});
