// The try page (/is/try): sends one /is/image or /is/content URL to this server and shows what came
// back. No framework and no build step. Everything shown - the typed URL, header names and values,
// bodies, property values - is put into the page with textContent or as a blob: image, never as
// HTML, so a URL or a reply cannot inject markup or script (the page's CSP forbids inline script too).
'use strict';

(function () {
  // What Chrome sends for an <img> (Smart Imaging negotiates on it), and what curl sends.
  var ACCEPT = {
    img: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
    any: '*/*',
  };
  // The server's root: the page is <root>/is/try (a named API Gateway stage adds a prefix).
  var ROOT = location.pathname.replace(/\/is\/try\/?[^/]*$/, '');
  var $ = function (id) { return document.getElementById(id); };
  var form = $('try-form');
  var input = $('url');
  var accept = $('accept');
  var objectUrl = null;
  var generation = 0; // a newer request wins over one still loading

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }

  function fillTable(table, rows) {
    var body = table.tBodies[0];
    body.replaceChildren();
    rows.forEach(function (row) {
      var tr = el('tr');
      tr.appendChild(el('th', row[0], { scope: 'row' }));
      tr.appendChild(el('td', row[1]));
      body.appendChild(tr);
    });
    if (!rows.length) {
      var tr = el('tr');
      tr.appendChild(el('td', '(none)', { colspan: '2' }));
      body.appendChild(tr);
    }
  }

  // ------------------------------------------------------------------ URLs
  // A URL typed with or without the server part; "sample/rose?wid=300" means /is/image/sample/rose?...
  // Only this server's /is/image and /is/content paths are sent (the CSP allows nothing else either).
  function resolve(text) {
    text = text.trim();
    if (!text) {
      return null;
    }
    if (!/^[a-z][a-z0-9+.-]*:/i.test(text) && text.charAt(0) !== '/') {
      text = ROOT + '/is/image/' + text;
    }
    var url;
    try {
      url = new URL(text, location.href);
    } catch (e) {
      return null;
    }
    if (url.origin !== location.origin || !/\/is\/(image|content)(\/|$)/.test(url.pathname)) {
      return null;
    }
    return url;
  }

  // The query's commands, split on "&" outside braces: nested requests (src=is{cat/img?wid=1&hei=2})
  // keep their own "&".
  function commands(query) {
    var out = [];
    var depth = 0;
    var start = 0;
    for (var i = 0; i <= query.length; i++) {
      var c = query.charAt(i);
      if (c === '{') {
        depth++;
      } else if (c === '}') {
        depth = Math.max(0, depth - 1);
      } else if ((c === '&' && depth === 0) || i === query.length) {
        if (i > start) {
          out.push(query.slice(start, i));
        }
        start = i + 1;
      }
    }
    return out;
  }

  function reqType(url) {
    var type = '';
    commands(url.search.slice(1)).forEach(function (cmd) {
      var m = /^req=([^,&]*)/i.exec(cmd);
      if (m) {
        type = m[1].toLowerCase();
      }
    });
    return type;
  }

  // The same request asking for its properties instead: req= replaced, every other command kept in order.
  function withReq(url, type) {
    var kept = commands(url.search.slice(1)).filter(function (cmd) { return !/^req=/i.test(cmd); });
    kept.push('req=' + type);
    return url.origin + url.pathname + '?' + kept.join('&');
  }

  // ------------------------------------------------------------------ properties (text format)
  // Java properties as Scene7 writes them: "#" lines are comments, "\" escapes ":", "=", "\" ...
  function unescapeProp(value) {
    return value.replace(/\\(u[0-9a-fA-F]{4}|.)/g, function (all, c) {
      if (c.length === 5) {
        return String.fromCharCode(parseInt(c.slice(1), 16));
      }
      return { n: '\n', t: '\t', r: '\r', f: '\f' }[c] || c;
    });
  }

  function parseProps(text) {
    var rows = [];
    text.split(/\r?\n/).forEach(function (line) {
      if (!line || line.charAt(0) === '#' || line.charAt(0) === '!') {
        return;
      }
      var m = /^((?:[^=\\]|\\.)*)=(.*)$/.exec(line);
      if (m) {
        rows.push([unescapeProp(m[1]), unescapeProp(m[2])]);
      }
    });
    return rows;
  }

  function isPropsText(type, text) {
    return /^text\/plain/i.test(type) && parseProps(text).length > 0;
  }

  // ------------------------------------------------------------------ sending
  async function fetchReply(href) {
    var started = performance.now();
    var res = await fetch(href, { headers: { Accept: ACCEPT[accept.value] || ACCEPT.img }, cache: 'no-store' });
    var blob = await res.blob();
    return { res: res, blob: blob, ms: performance.now() - started };
  }

  function statusText(reply) {
    var res = reply.res;
    return res.status + (res.statusText ? ' ' + res.statusText : '') + ' · ' + reply.blob.size + ' bytes · ' +
      Math.round(reply.ms) + ' ms' + (res.redirected ? ' · redirected' : '');
  }

  async function send(text) {
    var url = resolve(text);
    var mine = ++generation;
    $('reply').hidden = false;
    delete $('status').dataset.code; // the previous reply's colour
    $('properties').hidden = true;
    $('figure').hidden = true;
    $('body').hidden = true;
    $('body-props').hidden = true;
    fillTable($('headers'), []);
    if (!url) {
      $('status').textContent = 'not sent';
      $('sent').textContent = 'Only this server\'s /is/image and /is/content URLs can be tried: ' + text;
      return;
    }
    var href = url.href;
    $('status').textContent = 'loading…';
    $('sent').textContent = 'GET ' + url.pathname + url.search + '  (Accept: ' + (ACCEPT[accept.value] || ACCEPT.img) + ')';
    if (location.hash !== '#' + encodeURIComponent(url.pathname + url.search)) {
      history.replaceState(null, '', '#' + encodeURIComponent(url.pathname + url.search));
    }
    var reply;
    try {
      reply = await fetchReply(href);
    } catch (e) {
      if (mine === generation) {
        $('status').textContent = 'network error';
        $('body').textContent = String(e);
        $('body').hidden = false;
      }
      return;
    }
    if (mine !== generation) {
      return;
    }
    var type = reply.res.headers.get('content-type') || '';
    var headers = [];
    reply.res.headers.forEach(function (value, name) { headers.push([name, value]); });
    fillTable($('headers'), headers);
    $('status').textContent = statusText(reply);
    $('status').dataset.code = String(reply.res.status);
    if (/^image\//i.test(type)) {
      showImage(reply.blob, type);
    } else {
      var body = await reply.blob.text();
      $('body').textContent = body;
      $('body').hidden = false;
      if (isPropsText(type, body)) {
        fillTable($('body-props'), parseProps(body));
        $('body-props').hidden = false;
      }
    }
    var req = reqType(url);
    if (/\/is\/image\//.test(url.pathname) && (req === '' || req === 'img' || req === 'tmb')) {
      showProperties(url, mine);
    }
  }

  function showImage(blob, type) {
    if (objectUrl) {
      URL.revokeObjectURL(objectUrl);
    }
    objectUrl = URL.createObjectURL(blob);
    var img = $('image');
    var caption = $('image-size');
    caption.textContent = '';
    img.onload = function () {
      caption.textContent = img.naturalWidth + ' × ' + img.naturalHeight + ' px · ' + type;
    };
    img.onerror = function () {
      caption.textContent = 'this browser cannot display ' + type;
    };
    img.src = objectUrl;
    $('figure').hidden = false;
  }

  // req=props and req=imageprops of the same URL, in the text format, as tables.
  function showProperties(url, mine) {
    $('properties').hidden = false;
    ['props', 'imageprops'].forEach(function (type) {
      var table = $(type);
      var label = table.querySelector('caption .status');
      label.textContent = 'loading…';
      fillTable(table, []);
      fetchReply(withReq(url, type)).then(async function (reply) {
        var body = await reply.blob.text();
        if (mine !== generation) {
          return;
        }
        label.textContent = statusText(reply);
        fillTable(table, parseProps(body));
      }).catch(function (e) {
        if (mine === generation) {
          label.textContent = 'network error: ' + e;
        }
      });
    });
  }

  // ------------------------------------------------------------------ examples
  async function loadExamples() {
    var nav = $('examples');
    var data;
    try {
      var res = await fetch('try/examples.json', { cache: 'no-cache' });
      data = await res.json();
    } catch (e) {
      nav.replaceChildren(el('p', 'The examples could not be loaded: ' + e, { class: 'note' }));
      return;
    }
    nav.replaceChildren();
    data.groups.forEach(function (group) {
      nav.appendChild(el('h2', group.name));
      var list = el('ul');
      group.examples.forEach(function (example) {
        var path = ROOT + '/is/' + example[1];
        var button = el('button', example[0], { type: 'button', class: 'example', 'data-url': path, title: path });
        button.appendChild(el('code', path));
        button.addEventListener('click', function () {
          input.value = path;
          send(path);
        });
        var item = el('li');
        item.appendChild(button);
        list.appendChild(item);
      });
      nav.appendChild(list);
    });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    send(input.value);
  });
  accept.addEventListener('change', function () {
    if (input.value.trim()) {
      send(input.value);
    }
  });

  // A shared link: /is/try#<percent-encoded path and query>, on load and when the hash changes (a
  // pasted link, back/forward; the page's own replaceState fires no hashchange).
  function openHash() {
    var text = '';
    try {
      text = decodeURIComponent(location.hash.slice(1));
    } catch (e) {
      text = '';
    }
    if (text) {
      input.value = text;
      send(text);
    }
  }
  window.addEventListener('hashchange', openHash);

  loadExamples();
  openHash();
})();
