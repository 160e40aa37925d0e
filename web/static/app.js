// Flock dashboard: forms without reloads, live rows over Server-Sent
// Events, and streamed logs. No framework; nothing loaded from elsewhere.
(function () {
  'use strict';
  var csrfMeta = document.querySelector('meta[name=csrf]');
  var csrf = csrfMeta ? csrfMeta.content : '';
  var toastEl = document.getElementById('toast');
  var toastTimer = 0;

  function toast(msg, isErr) {
    if (!toastEl) return;
    toastEl.textContent = msg;
    toastEl.className = isErr ? 'err' : '';
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toastEl.hidden = true; }, isErr ? 6000 : 2500);
  }

  function fragment(html) {
    var t = document.createElement('template');
    t.innerHTML = html.trim();
    return t.content;
  }

  function errorOf(res) {
    return res.text().then(function (body) {
      try { return JSON.parse(body).error || res.statusText; } catch (e) { return body || res.statusText; }
    });
  }

  // Stream a response body into a <pre>, keeping the view at the bottom
  // while the reader has not scrolled up, and the text under ~200 KB.
  function pump(res, pre) {
    if (!res.body || !res.body.getReader) return res.text().then(function (t) { pre.textContent += t; });
    var reader = res.body.getReader();
    var dec = new TextDecoder();
    function step() {
      return reader.read().then(function (r) {
        if (r.done) return;
        var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
        pre.textContent += dec.decode(r.value, { stream: true });
        if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-150000);
        if (stick) pre.scrollTop = pre.scrollHeight;
        return step();
      });
    }
    return step();
  }

  function stream(pre) {
    fetch(pre.dataset.stream, { credentials: 'same-origin', headers: { Accept: 'text/plain' } })
      .then(function (res) {
        if (!res.ok) return errorOf(res).then(function (e) { pre.textContent = e; });
        return pump(res, pre).then(function () { if (pre.dataset.status) showStatus(pre.dataset.status); });
      })
      .catch(function () { pre.textContent += '\n(stream closed)'; });
  }
  document.querySelectorAll('pre[data-stream]').forEach(stream);

  // A deploy's page shows the outcome once its log stream ends.
  function showStatus(url) {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (d) {
        var el = document.getElementById('deploy-status');
        if (!d || !el) return;
        el.textContent = d.status;
        el.className = 'outcome o-' + d.status;
      });
  }

  // Forms marked data-fetch post without leaving the page.
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches('form[data-fetch]')) return;
    ev.preventDefault();
    var name = form.dataset.confirmName;
    if (name && form.elements.confirm && form.elements.confirm.value !== name) {
      toast('Type ' + name + ' to confirm.', true);
      return;
    }
    var out = form.dataset.streamTo ? document.querySelector(form.dataset.streamTo) : null;
    var buttons = form.querySelectorAll('button');
    buttons.forEach(function (b) { b.disabled = true; });
    var done = function () { buttons.forEach(function (b) { b.disabled = false; }); };
    fetch(form.action, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: out ? 'text/plain' : 'application/json', 'X-CSRF-Token': csrf },
      body: new URLSearchParams(new FormData(form))
    }).then(function (res) {
      if (!res.ok) return errorOf(res).then(function (e) { toast(e, true); });
      if (out) {
        out.hidden = false;
        var pre = out.querySelector('pre');
        pre.textContent = '';
        out.scrollIntoView({ behavior: 'smooth' });
        return pump(res, pre);
      }
      return res.json().then(function (j) {
        toast(j.message || 'done');
        if (form.hasAttribute('data-reset')) form.reset(); // a secret typed in stays on no page
        if (form.dataset.then) { location.assign(form.dataset.then); return; }
        var row = form.closest('tr[data-app]');
        if (row) refreshRow(row.dataset.app);
      });
    }).catch(function (e) { toast(String(e), true); }).then(done);
  });

  // Apps page: one row per app, re-rendered by the server on each event.
  var tbody = document.getElementById('apps');
  var live = document.getElementById('live');
  var pending = {};

  function refreshRow(app) {
    return fetch('/ui/apps/' + encodeURIComponent(app) + '/row', { credentials: 'same-origin' })
      .then(function (res) {
        var old = document.getElementById('app-' + app);
        if (res.status === 404) { if (old) old.remove(); summarize(); return; }
        if (!res.ok) return;
        return res.text().then(function (html) {
          var row = fragment(html).firstElementChild;
          if (!row) return;
          old = document.getElementById('app-' + app);
          var focused = old && old.contains(document.activeElement) ? document.activeElement : null;
          if (focused && focused.name === 'instances') {
            row.querySelector('input[name=instances]').value = focused.value;
          }
          if (old) {
            old.replaceWith(row);
          } else {
            var empty = tbody.querySelector('tr.empty');
            if (empty) empty.remove();
            var after = null;
            tbody.querySelectorAll('tr[data-app]').forEach(function (r) {
              if (!after && r.dataset.app > app) after = r;
            });
            tbody.insertBefore(row, after);
          }
          if (focused && focused.name === 'instances') row.querySelector('input[name=instances]').focus();
          row.classList.add('flash');
          summarize();
        });
      });
  }

  function refreshApp(app, type) {
    if (type === 'destroyed') { toast(app + ' was destroyed'); location.assign('/'); return; }
    fetch('/ui/apps/' + encodeURIComponent(app) + '/live', { credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; });
    if (type === 'deploy' || type === 'release') {
      var box = document.getElementById('releases');
      var open = [];
      box.querySelectorAll('details[open]').forEach(function (d) { open.push(d.id); });
      fetch('/ui/apps/' + encodeURIComponent(app) + '/releases', { credentials: 'same-origin' })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (html === null) return;
          box.innerHTML = html;
          open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        });
    }
  }

  // The line above the table counts the rows again after each change.
  var order = ['running', 'sleeping', 'waking', 'deploying', 'failed', 'stopped'];
  function summarize() {
    var el = document.getElementById('summary');
    if (!el || !tbody) return;
    var rows = tbody.querySelectorAll('tr[data-app]');
    var counts = {};
    var saved = 0;
    rows.forEach(function (r) {
      counts[r.dataset.state] = (counts[r.dataset.state] || 0) + 1;
      saved += Number(r.dataset.saved) || 0;
    });
    el.textContent = rows.length + (rows.length === 1 ? ' app' : ' apps');
    order.forEach(function (st) {
      if (!counts[st]) return;
      el.appendChild(document.createTextNode(' · '));
      var sp = document.createElement('span');
      sp.className = 'state s-' + st;
      sp.textContent = counts[st] + ' ' + st;
      el.appendChild(sp);
    });
    var h = saved / 3600;
    el.appendChild(document.createTextNode(' · sleeping saved ' + (h < 10 ? h.toFixed(1) : h.toFixed(0)) + ' h of instances'));
  }

  // Events of one app that arrive together are handled once.
  function schedule(app, type) {
    var key = app + '|' + (type === 'deploy' || type === 'release' || type === 'destroyed' ? type : 'state');
    if (pending[key]) return;
    pending[key] = true;
    setTimeout(function () {
      delete pending[key];
      if (tbody) refreshRow(app);
      else if (live && live.dataset.liveApp === app) refreshApp(app, type);
    }, 30);
  }

  function resync() {
    if (tbody) {
      fetch('/', { credentials: 'same-origin' }).then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var fresh = doc.getElementById('apps');
          if (fresh) tbody.innerHTML = fresh.innerHTML;
          summarize();
        });
    } else if (live) {
      refreshApp(live.dataset.liveApp, 'release');
    }
  }

  if ((tbody || live) && window.EventSource) {
    var conn = document.getElementById('conn');
    var es = new EventSource('/api/v1/events' + (live ? '?app=' + encodeURIComponent(live.dataset.liveApp) : ''));
    var lost = false;
    es.onopen = function () {
      if (conn) conn.hidden = true;
      document.body.dataset.sse = 'open';
      if (lost) resync();
      lost = false;
    };
    es.onerror = function () { lost = true; if (conn) conn.hidden = false; };
    es.onmessage = function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev && ev.app) schedule(ev.app, ev.type);
    };
    document.body.dataset.live = 'on';
  }
})();
