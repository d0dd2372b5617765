// agentdesk co-browse, the agent's viewer: replays the customer's page with rrweb's live mode.
// Everything that arrives is treated as hostile: rrweb rebuilds it in a sandboxed frame without
// scripts, and this page's content security policy allows only its own scripts.
(function () {
  'use strict';
  var token = location.pathname.split('/').pop();
  var status = document.getElementById('status');
  var screen = document.getElementById('screen');
  var state = {
    connected: false, customer: null, ended: null, error: null, events: 0,
    write: 'off', refused: [], errors: []
  };
  window.viewerState = state;
  var replayer = null;
  var ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws/view/' + token);

  function say(text) { status.textContent = text; }

  function add(event) {
    if (!event || typeof event !== 'object' || typeof event.type !== 'number' ||
        typeof event.timestamp !== 'number') return;
    if (!replayer) {
      replayer = new window.rrweb.Replayer([], {
        root: screen,
        liveMode: true,
        mouseTail: false,
        triggerFocus: false,
        UNSAFE_replayCanvas: false,
        showWarning: false,
        showDebug: false,
        // Changes go straight to the frame's DOM (no virtual DOM to flush later).
        useVirtualDom: false
      });
      // Every event is applied as it arrives: rrweb's live clock would start at the first
      // event's delay (that of the full snapshot) and hold every later event back by as much.
      replayer.startLive(Number.MAX_SAFE_INTEGER);
      replayer.on('fullsnapshot-rebuilded', listen);
    }
    try { replayer.addEvent(event); state.events++; } catch (e) { /* a malformed event is skipped */ }
    listen();
  }

  ws.onopen = function () { state.connected = true; say('Waiting for the customer\u2019s page…'); };
  ws.onmessage = function (m) {
    var msg;
    try { msg = JSON.parse(m.data); } catch (e) { return; }
    if (msg.type === 'events' && Array.isArray(msg.events)) {
      msg.events.forEach(add);
    } else if (msg.type === 'customer') {
      state.customer = msg.state;
      say(msg.state === 'connected' ? 'Live' : 'The customer\u2019s page is reconnecting…');
    } else if (msg.type === 'error') {
      if (msg.code === 'write-not-granted') {
        state.errors.push(msg.code);
      } else {
        state.error = msg.code;
      }
      say(String(msg.message || msg.code));
    } else if (msg.type === 'write') {
      state.write = String(msg.state);
      mode.textContent = state.write === 'granted' ? 'Write mode' :
        state.write === 'requested' ? 'Asked for control…' : 'Pointer mode';
      if (replayer) {
        if (state.write === 'granted') replayer.enableInteract(); else replayer.disableInteract();
      }
    } else if (msg.type === 'refused') {
      state.refused.push(String(msg.reason));
      say('The page refused: ' + String(msg.reason));
    } else if (msg.type === 'ended') {
      state.ended = String(msg.reason);
      say('Co-browsing ended (' + state.ended + ')');
    }
  };
  ws.onclose = function () {
    state.connected = false;
    if (!state.ended && !state.error) { state.ended = 'closed'; say('Co-browsing ended'); }
    if (replayer) { try { replayer.pause(); } catch (e) { /* already stopped */ } }
    if (state.ended) { screen.textContent = ''; }
  };
  function send(message) {
    if (ws.readyState === 1) ws.send(JSON.stringify(message));
  }
  var mode = document.getElementById('mode');
  document.getElementById('stop').onclick = function () { send({ type: 'stop' }); };
  document.getElementById('write').onclick = function () { send({ type: 'request-write' }); };

  // Pointer mode: where the agent points, in the customer's viewport (the frame is unscaled).
  var lastMove = 0;
  screen.addEventListener('mousemove', function (e) {
    var frame = screen.querySelector('iframe');
    if (!frame || Date.now() - lastMove < 40) return;
    lastMove = Date.now();
    var r = frame.getBoundingClientRect();
    send({ type: 'pointer', x: e.clientX - r.left, y: e.clientY - r.top });
  });

  // Write mode: the agent's actions on the mirrored page go to the customer's page (which decides
  // what it allows); nothing happens in the mirror itself, which only follows the customer's page.
  function idOf(node) {
    var id = replayer ? replayer.getMirror().getId(node) : -1;
    return typeof id === 'number' && id > 0 ? id : null;
  }
  // The handlers are attached again after each full snapshot: rebuilding opens the frame's
  // document anew, which drops every listener on it.
  function onClick(e) {
    e.preventDefault();
    var id = idOf(e.target);
    if (id) send({ type: 'click', id: id });
  }
  function onInput(e) {
    var id = idOf(e.target);
    if (id) send({ type: 'set-value', id: id, value: String(e.target.value) });
  }
  function onKey(e) {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    var id = idOf(e.target);
    if (id) send({ type: 'key', id: id, key: 'Enter' });
  }
  function onSubmit(e) { e.preventDefault(); }
  function onWheel(e) {
    var doc = e.target.ownerDocument || e.target;
    var page = doc.scrollingElement || doc.documentElement;
    send({ type: 'scroll', x: page.scrollLeft + e.deltaX, y: page.scrollTop + e.deltaY });
  }
  var handlers = [['click', onClick], ['input', onInput], ['keydown', onKey], ['submit', onSubmit],
    ['wheel', onWheel]];
  function listen() {
    var frame = screen.querySelector('iframe');
    var doc = frame && frame.contentDocument;
    if (!doc) return;
    handlers.forEach(function (h) {
      doc.removeEventListener(h[0], h[1], true);
      doc.addEventListener(h[0], h[1], true);
    });
  }
})();
