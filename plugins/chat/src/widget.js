// The customer's chat widget. Self-contained: no framework, nothing fetched but this page's own
// files. Every text from the network is put in the page with textContent, never as markup.
//
// Reliability: the server numbers every recorded event (seq) and acknowledges every customer
// message by its client id (cid). The widget keeps its resume token and its unacknowledged
// messages in localStorage; after a dropped connection or a reload it resumes from the last seq it
// shows and resends what was not acknowledged (the server recognises a cid it already has).
(function () {
  'use strict';
  const STORE = 'agentdesk.chat';
  const $ = (id) => document.getElementById(id);
  const saved = (() => {
    try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
  })();
  const state = {
    token: saved.token || null,
    pending: Array.isArray(saved.pending) ? saved.pending : [],
    lastSeq: 0,
    ended: false,
    maxBytes: 4000,
    starting: null,
  };
  let ws = null;
  let retry = 0;
  let retryTimer = null;
  let typingSent = false;
  let typingTimer = null;
  // The origin of the page around this widget when it carries the co-browse script.
  let cobrowseFrom = null;

  function persist() {
    try {
      localStorage.setItem(STORE, JSON.stringify({ token: state.token, pending: state.pending }));
    } catch (e) { /* storage full or disabled: the chat still works until a reload */ }
  }

  function show(el, on) { el.hidden = !on; }
  function status(text) { $('status').textContent = text; }
  function fail(text) { $('error').textContent = text; show($('error'), !!text); }

  function line(kind, name, text, extra) {
    const li = document.createElement('li');
    li.className = 'line ' + kind + (extra ? ' ' + extra : '');
    if (name) {
      const n = document.createElement('span');
      n.className = 'name';
      n.textContent = name;
      li.appendChild(n);
    }
    const t = document.createElement('span');
    t.className = 'text';
    t.textContent = text;
    li.appendChild(t);
    return li;
  }

  function renderPending() {
    const list = $('pending');
    list.replaceChildren(...state.pending.map((p) => {
      const li = line('customer', 'You', p.text, 'pending');
      li.dataset.cid = p.cid;
      return li;
    }));
  }

  function onEvent(e) {
    if (e.seq <= state.lastSeq) return; // already shown (a replay after resume)
    state.lastSeq = e.seq;
    const list = $('messages');
    let li;
    switch (e.kind) {
      case 'line':
        li = line(e.author, e.author === 'system' ? '' : e.name, e.text);
        if (e.cid) {
          li.dataset.cid = e.cid;
          state.pending = state.pending.filter((p) => p.cid !== e.cid);
          persist();
          renderPending();
        }
        break;
      case 'joined':
        li = line('system', '', e.name + ' joined the chat');
        li.classList.add('joined');
        break;
      case 'left':
        li = line('system', '', e.name + ' left the chat');
        li.classList.add('left');
        break;
      case 'ended':
        li = line('system', '', 'Chat ended: ' + e.reason);
        li.classList.add('ended');
        setEnded();
        break;
      default:
        return;
    }
    li.dataset.seq = String(e.seq);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function showCobrowse() { show($('cobrowse'), !!cobrowseFrom && !!state.token && !state.ended); }

  function setEnded() {
    state.ended = true;
    show($('cobrowse'), false);
    state.pending = [];
    persist();
    renderPending();
    $('text').disabled = true;
    $('send').disabled = true;
    show($('end'), false);
    show($('new-chat'), true);
    show($('queue'), false);
    show($('typing'), false);
    status('The chat has ended.');
  }

  function onMessage(m) {
    switch (m.type) {
      case 'welcome':
        state.token = m.token;
        state.maxBytes = m.max_message_bytes || state.maxBytes;
        state.starting = null;
        persist();
        retry = 0;
        fail('');
        show($('start-form'), false);
        show($('chat'), true);
        show($('reconnect'), false);
        status(m.ended ? 'The chat has ended.' : 'Connected as ' + m.name + '.');
        if (m.ended) setEnded();
        showCobrowse();
        // Resend what the server has not acknowledged; it ignores a cid it already has.
        for (const p of state.pending) send({ type: 'message', cid: p.cid, text: p.text });
        break;
      case 'event':
        onEvent(m);
        break;
      case 'ack':
        state.pending = state.pending.filter((p) => p.cid !== m.cid);
        persist();
        renderPending();
        break;
      case 'queue':
        $('queue').textContent = 'You are number ' + m.position + ' in the queue.';
        show($('queue'), m.position > 0 && !state.ended);
        break;
      case 'typing':
        $('typing').textContent = m.name + ' is typing…';
        show($('typing'), m.typing && !state.ended);
        break;
      case 'notice':
        $('notice').textContent = m.text;
        show($('notice'), true);
        break;
      case 'error':
        if (!state.token) state.starting = null;
        fail(m.message);
        if (m.message === 'this chat is no longer available') reset();
        break;
    }
  }

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function connect() {
    clearTimeout(retryTimer);
    if (ws && ws.readyState <= WebSocket.OPEN) return;
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/ws');
    status('Connecting…');
    ws.onopen = () => {
      if (state.token) send({ type: 'resume', token: state.token, last_seq: state.lastSeq });
      else if (state.starting) send({ type: 'start', name: state.starting.name, email: state.starting.email });
    };
    ws.onmessage = (event) => {
      let m;
      try { m = JSON.parse(event.data); } catch (e) { return; }
      onMessage(m);
    };
    ws.onclose = (event) => {
      ws = null;
      // Refused by a limit or a rule: say why and let the customer decide.
      if ([1003, 1007, 1008, 1009].includes(event.code)) {
        status('Disconnected: ' + (event.reason || 'refused by the server'));
        show($('reconnect'), true);
        return;
      }
      if (!state.token && !state.starting) return;
      if (state.ended) { status('The chat has ended.'); return; }
      const delay = Math.min(5000, 250 * Math.pow(2, retry++));
      status('Connection lost' + (event.reason ? ' (' + event.reason + ')' : '') + '; reconnecting…');
      retryTimer = setTimeout(connect, delay);
    };
  }

  function reset() {
    state.token = null;
    state.pending = [];
    state.lastSeq = 0;
    state.ended = false;
    persist();
    $('messages').replaceChildren();
    renderPending();
    $('text').disabled = false;
    $('send').disabled = false;
    show($('end'), true);
    show($('new-chat'), false);
    show($('chat'), false);
    show($('start-form'), true);
    status('');
  }

  $('start-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('name').value.trim();
    const email = $('email').value.trim();
    if (!name || !email) return;
    state.starting = { name, email };
    if (ws && ws.readyState === WebSocket.OPEN) send({ type: 'start', name, email });
    else connect();
  });

  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('text').value;
    if (!text.trim() || state.ended) return;
    if (new TextEncoder().encode(text).length > state.maxBytes) {
      fail('Your message is too long (at most ' + state.maxBytes + ' bytes).');
      return;
    }
    fail('');
    const cid = 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10);
    state.pending.push({ cid, text });
    persist();
    renderPending();
    $('text').value = '';
    stopTyping();
    send({ type: 'message', cid, text });
  });

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSent) { typingSent = false; send({ type: 'typing', typing: false }); }
  }

  $('text').addEventListener('input', () => {
    if (!typingSent && $('text').value) { typingSent = true; send({ type: 'typing', typing: true }); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 2000);
  });

  $('text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
  });

  // Co-browse from the chat: the page around the widget (its co-browse script) makes the session
  // and hands the code back; the code goes into the chat, and the agent's view joins it by itself.
  window.addEventListener('message', (e) => {
    const m = e.data;
    if (e.source !== window.parent || window.parent === window || !m || typeof m !== 'object') return;
    if (m.agentdesk === 'cobrowse-ready') {
      cobrowseFrom = e.origin;
      showCobrowse();
    } else if (m.agentdesk === 'cobrowse-code' && e.origin === cobrowseFrom
      && typeof m.code === 'string' && m.code.length <= 64 && !state.ended) {
      send({ type: 'cobrowse', code: m.code });
      status('Co-browsing: your agent can see the page.');
    }
  });
  if (window.parent !== window) window.parent.postMessage({ agentdesk: 'cobrowse-hello' }, '*');
  $('cobrowse').addEventListener('click', () => {
    if (cobrowseFrom) window.parent.postMessage({ agentdesk: 'cobrowse-start' }, cobrowseFrom);
  });

  $('end').addEventListener('click', () => send({ type: 'leave' }));
  $('reconnect').addEventListener('click', () => { retry = 0; connect(); });
  $('new-chat').addEventListener('click', reset);

  if (state.token) {
    show($('start-form'), false);
    show($('chat'), true);
    renderPending();
    connect();
  }
})();
