// agentdesk co-browse, the agent's viewer: replays the customer's page with rrweb's live mode.
// Everything that arrives is treated as hostile: rrweb rebuilds it in a sandboxed frame without
// scripts, and this page's content security policy allows only its own scripts.
(function () {
  'use strict';
  var token = location.pathname.split('/').pop();
  var status = document.getElementById('status');
  var screen = document.getElementById('screen');
  var state = { connected: false, customer: null, ended: null, error: null, events: 0 };
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
        showDebug: false
      });
      replayer.startLive(event.timestamp);
    }
    try { replayer.addEvent(event); state.events++; } catch (e) { /* a malformed event is skipped */ }
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
      state.error = msg.code;
      say(String(msg.message || msg.code));
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
  document.getElementById('stop').onclick = function () {
    if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'stop' }));
  };
})();
