// agentdesk co-browse, the customer's side. A company's pages include it with one tag:
//   <script src="https://cobrowse.example.com/cobrowse.js"></script>
// It records the page with rrweb (served by the same plugin) only while an agent is viewing, and
// masks in this browser, before anything is sent: passwords always; every element with the class
// `ad-mask` or the attribute `data-ad-mask` (its value or text becomes asterisks of a fixed
// length); elements with the class `ad-block` or the attribute `data-ad-block` are not sent at all.
// Pointer mode (the default) shows the agent's pointer and a highlight box. Write mode, only after
// the customer approves in the banner, lets the agent click, fill in fields and scroll; this
// script refuses form submission (submit buttons, any button inside a form, Enter in a field)
// and elements marked `ad-restricted` / `data-ad-restricted`, whatever the agent's side sends.
(function () {
  'use strict';
  if (window.AgentdeskCobrowse) return;
  var me = document.currentScript;
  var base = me ? me.src.replace(/\/cobrowse\.js(\?.*)?$/, '') : '';
  var socketUrl = base.replace(/^http/, 'ws') + '/ws/customer';
  var KEY = 'agentdesk-cobrowse';
  var MASK = '********';

  var api = {
    state: 'idle', code: null, agent: null, error: null, ended: null, write: false,
    start: start, offer: offer, stop: stop
  };
  window.AgentdeskCobrowse = api;

  var ws = null, opened = false, stopRecording = null, queue = [], flushTimer = null, lastFlush = 0;
  var retry = 500, pendingStart = null;

  function saved() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (e) { return null; }
  }
  function save(v) {
    try {
      if (v) sessionStorage.setItem(KEY, JSON.stringify(v)); else sessionStorage.removeItem(KEY);
    } catch (e) { /* storage off: a reload ends the session */ }
  }

  // What is restricted: masked values never leave this browser.
  function masked(el) {
    if (!el || el.nodeType !== 1) return true;
    var type = (el.getAttribute('type') || '').toLowerCase();
    if (type === 'password' || el.hasAttribute('data-rr-is-password')) return true;
    var auto = (el.getAttribute('autocomplete') || '').toLowerCase();
    if (auto.indexOf('cc-') === 0 || auto.indexOf('password') >= 0) return true;
    return !!el.closest('.ad-mask,[data-ad-mask]');
  }
  function maskInput(text, el) { return masked(el) ? MASK : text; }

  // --- the banner -------------------------------------------------------------------------------
  var banner = document.createElement('div');
  banner.id = 'ad-cobrowse';
  banner.className = 'ad-block';
  banner.setAttribute('data-ad-block', '');
  banner.setAttribute('role', 'region');
  banner.setAttribute('aria-label', 'Co-browse');
  banner.style.cssText = 'position:fixed;right:12px;bottom:12px;z-index:2147483647;' +
    'background:#1f2937;color:#fff;font:14px sans-serif;padding:8px 12px;border-radius:6px;';
  var label = document.createElement('span');
  label.id = 'ad-cobrowse-text';
  var button = document.createElement('button');
  button.type = 'button';
  button.id = 'ad-cobrowse-button';
  button.style.cssText = 'margin-left:8px';
  var stopButton = document.createElement('button');
  stopButton.type = 'button';
  stopButton.id = 'ad-cobrowse-stop';
  stopButton.style.cssText = 'margin-left:8px';
  stopButton.textContent = 'Stop';
  stopButton.hidden = true;
  stopButton.onclick = function () { stop(); };
  banner.appendChild(label);
  banner.appendChild(button);
  banner.appendChild(stopButton);
  // Show `text`, an optional action button, and Stop while a session exists.
  function show(text, action, onClick, stoppable) {
    label.textContent = text;
    button.textContent = action || '';
    button.hidden = !action;
    button.onclick = onClick || null;
    stopButton.hidden = !stoppable;
  }
  // The page's own button (e.g. during a call): the code shows, and the session is offered at
  // once; it waits until the agent types the code on the call (or a chat carries it).
  function idle() { show('', 'Co-browse', function () { start().then(offer); }); }
  function attachBanner() { if (!banner.parentNode && document.body) document.body.appendChild(banner); }

  // --- the connection ---------------------------------------------------------------------------
  function send(message) {
    if (ws && opened) ws.send(JSON.stringify(message));
  }
  function connect() {
    if (ws) return;
    ws = new WebSocket(socketUrl);
    ws.onopen = function () {
      opened = true;
      retry = 500;
      var s = saved();
      if (s && s.code && s.secret) send({ type: 'resume', code: s.code, secret: s.secret });
      else if (pendingStart) send({ type: 'start' });
    };
    ws.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      on(msg);
    };
    ws.onclose = function () {
      ws = null;
      opened = false;
      pause();
      if (api.state === 'ended' || api.state === 'idle') return;
      // Dropped: come back and resume (the agent's view starts again from a full snapshot).
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  function on(msg) {
    switch (msg.type) {
      case 'session':
        api.code = msg.code;
        api.state = 'waiting';
        save({ code: msg.code, secret: msg.secret });
        show('Your co-browse code: ' + msg.code.replace(/(\d{3})(?=\d)/g, '$1 '), null, null, true);
        if (pendingStart) { pendingStart.resolve(msg.code); pendingStart = null; }
        break;
      case 'resumed':
        api.code = (saved() || {}).code;
        api.state = msg.phase;
        if (msg.phase !== 'active') show('Your co-browse code: ' + api.code, null, null, true);
        break;
      case 'offered':
        api.state = 'offered';
        break;
      case 'agent':
        api.state = 'active';
        api.agent = msg.name;
        seeing();
        break;
      case 'pointer':
        pointAt(Number(msg.x) || 0, Number(msg.y) || 0);
        break;
      case 'write-requested':
        show('Your agent asks to control this page', 'Allow', function () {
          send({ type: 'write', allow: true });
        }, true);
        break;
      case 'write':
        api.write = !!msg.granted;
        if (api.write) {
          show('Your agent can control this page', 'Take back control', function () {
            api.write = false;
            send({ type: 'write', allow: false });
            seeing();
          }, true);
        } else {
          seeing();
        }
        break;
      case 'click':
      case 'set-value':
      case 'key':
      case 'scroll':
        act(msg);
        break;
      case 'snapshot':
        record();
        break;
      case 'pause':
        pause();
        break;
      case 'error':
        api.error = msg.code;
        if (pendingStart) { pendingStart.reject(new Error(msg.message)); pendingStart = null; }
        if (['unknown-code', 'code-used', 'wrong-secret'].indexOf(msg.code) >= 0 && api.state !== 'waiting') {
          finish(msg.code);
        }
        break;
      case 'ended':
        finish(msg.reason);
        break;
    }
  }

  function seeing() { show('Your agent can see this page', null, null, true); }

  // --- the agent's pointer and highlight box (never recorded: they are blocked) ---------------------
  var pointer = document.createElement('div');
  pointer.id = 'ad-cobrowse-pointer';
  pointer.className = 'ad-block';
  pointer.style.cssText = 'position:fixed;width:14px;height:14px;margin:-7px 0 0 -7px;border-radius:7px;' +
    'background:rgba(220,38,38,.8);pointer-events:none;z-index:2147483647;display:none';
  var box = document.createElement('div');
  box.id = 'ad-cobrowse-highlight';
  box.className = 'ad-block';
  box.style.cssText = 'position:fixed;outline:2px solid rgba(220,38,38,.8);pointer-events:none;' +
    'z-index:2147483646;display:none';
  function pointAt(x, y) {
    if (!pointer.parentNode) { document.body.appendChild(box); document.body.appendChild(pointer); }
    pointer.style.left = x + 'px';
    pointer.style.top = y + 'px';
    pointer.style.display = 'block';
    var el = document.elementFromPoint(x, y);
    if (el && el !== document.body && el !== document.documentElement && !banner.contains(el)) {
      var r = el.getBoundingClientRect();
      box.style.left = r.left + 'px'; box.style.top = r.top + 'px';
      box.style.width = r.width + 'px'; box.style.height = r.height + 'px';
      box.style.display = 'block';
    } else {
      box.style.display = 'none';
    }
  }

  // --- write mode: what the agent may do, decided here -----------------------------------------------
  var FIELD_TYPES = ['', 'text', 'search', 'email', 'tel', 'url', 'number', 'date', 'time',
    'datetime-local', 'month', 'week', 'color', 'range', 'checkbox', 'radio'];
  // Why the agent may not touch `el` (null: it may).
  function restricted(el) {
    if (!el || el.nodeType !== 1) return 'not an element';
    if (banner.contains(el)) return 'the co-browse banner';
    if (el.closest('.ad-restricted,[data-ad-restricted],.ad-block,[data-ad-block]')) return 'restricted';
    if (masked(el)) return 'masked';
    var tag = el.tagName.toLowerCase();
    var type = (el.getAttribute('type') || '').toLowerCase();
    if (tag === 'button' && (el.closest('form') || el.form || type === 'submit' || type === '')) {
      return 'submits a form';
    }
    if (tag === 'input' && FIELD_TYPES.indexOf(type) < 0 && type !== 'button') return 'submits a form';
    if (tag === 'input' && type === 'button' && (el.closest('form') || el.form)) return 'submits a form';
    if (tag === 'label' && el.control && restricted(el.control)) return restricted(el.control);
    if (tag === 'a' && /^\s*javascript:/i.test(el.getAttribute('href') || '')) return 'runs a script';
    return null;
  }
  var agentActing = false;
  // Whatever a site's own script does while an agent's action runs, no form goes.
  document.addEventListener('submit', function (e) {
    if (agentActing) { e.preventDefault(); e.stopImmediatePropagation(); refuse('submits a form'); }
  }, true);
  function refuse(reason) { send({ type: 'refused', reason: reason }); }
  function act(msg) {
    if (!api.write) return refuse('write mode is off');
    if (msg.type === 'scroll') { window.scrollTo(Number(msg.x) || 0, Number(msg.y) || 0); return; }
    var node = window.rrweb.record.mirror.getNode(Number(msg.id));
    var el = node && node.nodeType === 1 ? node : node && node.parentElement;
    var target = el && el.closest ? (el.closest('button,input,select,textarea,a,label') || el) : el;
    var why = restricted(el) || restricted(target);
    if (why) return refuse(why);
    agentActing = true;
    try {
      if (msg.type === 'click') {
        target.click();
      } else if (msg.type === 'set-value') {
        var tag = target.tagName.toLowerCase();
        if (tag !== 'input' && tag !== 'textarea' && tag !== 'select') return refuse('not a field');
        var value = String(msg.value);
        target.value = tag === 'input' ? value.replace(/[\r\n]/g, '') : value;
        target.dispatchEvent(new Event('input', { bubbles: true }));
        target.dispatchEvent(new Event('change', { bubbles: true }));
      } else {
        // Keys are not replayed into the page: Enter would submit the form.
        return refuse(msg.key === 'Enter' ? 'submits a form' : 'keys are not sent');
      }
    } finally {
      agentActing = false;
    }
  }

  // --- recording, only while an agent's viewer is open --------------------------------------------
  function record() {
    if (stopRecording) {
      window.rrweb.record.takeFullSnapshot(true);
      return;
    }
    stopRecording = window.rrweb.record({
      // A change goes at once; what follows within 50 ms of a send waits for the next batch.
      emit: function (event) {
        queue.push(event);
        if (!flushTimer) flushTimer = setTimeout(flush, Math.max(0, lastFlush + 50 - Date.now()));
      },
      maskAllInputs: true,
      maskInputFn: maskInput,
      maskTextClass: 'ad-mask',
      maskTextSelector: '[data-ad-mask]',
      blockClass: 'ad-block',
      blockSelector: '[data-ad-block]',
      recordCanvas: false,
      collectFonts: false,
      inlineImages: false,
      sampling: { mousemove: 50, scroll: 100 }
    }) || null;
  }
  function flush() {
    flushTimer = null;
    lastFlush = Date.now();
    if (!queue.length) return;
    var batch = queue;
    queue = [];
    send({ type: 'events', events: batch });
  }
  function pause() {
    if (stopRecording) { stopRecording(); stopRecording = null; }
    queue = [];
  }
  function finish(reason) {
    pause();
    api.write = false;
    pointer.style.display = 'none';
    box.style.display = 'none';
    save(null);
    api.state = 'ended';
    api.ended = reason;
    show(reason === 'customer-stopped' ? 'Co-browsing stopped' : 'Co-browsing ended', 'Co-browse', function () {
      api.state = 'idle'; api.ended = null; start().then(offer);
    });
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } }
  }

  // --- what a page (or the chat widget) calls ------------------------------------------------------
  function start() {
    if (api.state !== 'idle' && api.state !== 'ended') return Promise.resolve(api.code);
    api.state = 'starting';
    return new Promise(function (resolve, reject) {
      pendingStart = { resolve: resolve, reject: reject };
      if (ws && opened) send({ type: 'start' }); else connect();
    });
  }
  function offer() { if (api.state === 'waiting') send({ type: 'offer' }); }
  // Stop always works: recording stops here at once, whatever the connection does.
  function stop() {
    pause();
    send({ type: 'stop' });
    finish('customer-stopped');
  }

  // --- a chat widget on this page (an iframe of the web chat) ---------------------------------------
  // The widget asks whether co-browsing is here ('cobrowse-hello'); its Co-browse button asks to
  // start ('cobrowse-start'): the code goes back to that frame, which sends it into the chat (the
  // chat records it, and the session joins the chat by itself), and the session is offered.
  function frameOfPage(source) {
    for (var i = 0; i < window.frames.length; i++) if (window.frames[i] === source) return true;
    return false;
  }
  window.addEventListener('message', function (e) {
    var m = e.data;
    if (!m || typeof m !== 'object' || !frameOfPage(e.source)) return;
    if (m.agentdesk === 'cobrowse-hello') {
      e.source.postMessage({ agentdesk: 'cobrowse-ready' }, e.origin);
    } else if (m.agentdesk === 'cobrowse-start') {
      var source = e.source, origin = e.origin;
      start().then(function (code) {
        source.postMessage({ agentdesk: 'cobrowse-code', code: code }, origin);
        offer();
      });
    }
  });

  function boot() {
    attachBanner();
    idle();
    for (var i = 0; i < window.frames.length; i++) {
      window.frames[i].postMessage({ agentdesk: 'cobrowse-ready' }, '*');
    }
    if (saved()) { api.state = 'resuming'; connect(); }
  }
  var rr = document.createElement('script');
  rr.src = base + '/rrweb.js';
  rr.onload = function () {
    if (document.body) boot(); else document.addEventListener('DOMContentLoaded', boot);
  };
  (document.head || document.documentElement).appendChild(rr);
})();
