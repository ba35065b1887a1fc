// CloudFront Function (runtime cloudfront-js-2.0), viewer request event.
//
// Reduces the browser's negotiation headers to a few normalised values that are part of the
// cache key (template.yaml, ImageCachePolicy), so that the cache does not fragment on raw Accept
// strings or exact pixel ratios:
//   x-is-accept  avif | webp | none   which next-generation formats the browser takes
//   x-is-dpr     1 | 1.5 | 2 | 3      device pixel ratio: Sec-CH-DPR, else DPR, else 2 for
//                                    CloudFront's mobile/tablet detection, else 1
//   x-is-net     slow | fast         Save-Data: on, ECT slow-2g/2g/3g or Downlink < 1 Mbit/s: slow
// The three headers are always set, so a client cannot send its own. The query string is never
// read or touched: CloudFront forwards it to the origin exactly as the viewer sent it.
// Kept in sync with template.yaml by tests/test_edge.py; tested by edge/viewer-request.test.js.

function acceptClass(accept) {
  var avif = false;
  var webp = false;
  var ranges = accept.toLowerCase().split(',');
  for (var i = 0; i < ranges.length; i++) {
    var params = ranges[i].split(';');
    var type = params[0].trim();
    if (type !== 'image/avif' && type !== 'image/webp') {
      continue;
    }
    var q = 1;
    for (var j = 1; j < params.length; j++) {
      var kv = params[j].split('=');
      if (kv.length === 2 && kv[0].trim() === 'q') {
        q = parseFloat(kv[1]);
      }
    }
    if (!(q > 0)) {
      continue; // q=0 (or a malformed q) means "not acceptable"
    }
    if (type === 'image/avif') {
      avif = true;
    } else {
      webp = true;
    }
  }
  return avif ? 'avif' : webp ? 'webp' : 'none';
}

function dprClass(value) {
  var d = parseFloat(value);
  if (!(d > 0) || d > 16) {
    return null;
  }
  if (d < 1.25) {
    return '1';
  }
  if (d < 1.75) {
    return '1.5';
  }
  if (d < 2.5) {
    return '2';
  }
  return '3';
}

function header(headers, name) {
  var h = headers[name];
  return h && typeof h.value === 'string' ? h.value : '';
}

function netClass(headers) {
  if (header(headers, 'save-data').trim().toLowerCase() === 'on') {
    return 'slow';
  }
  var ect = header(headers, 'ect').trim().toLowerCase();
  if (ect === 'slow-2g' || ect === '2g' || ect === '3g') {
    return 'slow';
  }
  var downlink = parseFloat(header(headers, 'downlink'));
  if (downlink >= 0 && downlink < 1) {
    return 'slow';
  }
  return 'fast';
}

function handler(event) {
  var request = event.request;
  var headers = request.headers;
  var dpr = dprClass(header(headers, 'sec-ch-dpr')) || dprClass(header(headers, 'dpr'));
  if (!dpr) {
    var mobile = header(headers, 'cloudfront-is-mobile-viewer') === 'true';
    var tablet = header(headers, 'cloudfront-is-tablet-viewer') === 'true';
    dpr = mobile || tablet ? '2' : '1';
  }
  headers['x-is-accept'] = { value: acceptClass(header(headers, 'accept')) };
  headers['x-is-dpr'] = { value: dpr };
  headers['x-is-net'] = { value: netClass(headers) };
  return request;
}
