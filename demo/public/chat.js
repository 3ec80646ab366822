// The berth demo chat page. Plain browser JavaScript, no build step.
// The wire protocol is documented in demo/README.md.

const WHISPERS = '@whispers';
/** Lines kept per conversation, so a long session does not grow the page without bound. */
const MAX_LINES = 500;
/** Reconnect delays; the last one repeats. Jittered so that clients dropped together do not return together. */
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

const $ = (selector, root = document) => root.querySelector(selector);

const ui = {
  status: $('#status'),
  welcome: $('#welcome'),
  nameForm: $('#name-form'),
  nameInput: $('#name-input'),
  nameError: $('#name-error'),
  chat: $('#chat'),
  myName: $('#my-name'),
  joinForm: $('#join-form'),
  roomInput: $('#room-input'),
  tabs: $('#tabs'),
  views: $('#views'),
  whisperForm: $('#whisper-form'),
  notice: $('#notice'),
  roomTemplate: $('#room-template'),
};

const state = {
  /** @type {WebSocket | null} */
  socket: null,
  attempt: 0,
  /** The name the server acknowledged; sent again after every reconnect. */
  name: null,
  /** room → { members: string[], view, tab, log } */
  rooms: new Map(),
  active: WHISPERS,
  unread: new Map([[WHISPERS, 0]]),
  /** view → its tab button */
  tabs: new Map([[WHISPERS, $('.tab', ui.tabs)]]),
};

// ---- Connection --------------------------------------------------------------

function connect() {
  setStatus('connecting', state.attempt === 0 ? 'Connecting…' : 'Reconnecting…');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  let opened = false;
  socket.addEventListener('open', () => {
    opened = true;
    state.attempt = 0;
    setStatus('open', 'Connected');
    setConnected(true);
  });
  socket.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    receive(message);
  });
  socket.addEventListener('close', () => {
    state.socket = null;
    setConnected(false);
    const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    state.attempt++;
    setStatus('closed', `Disconnected — retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
    if (opened) for (const room of state.rooms.values()) addLine(room.log, { kind: 'system', text: 'Connection lost…' });
    setTimeout(connect, delay);
  });
}

function send(message) {
  if (state.socket === null || state.socket.readyState !== WebSocket.OPEN) {
    showNotice('Not connected; try again in a moment.');
    return false;
  }
  state.socket.send(JSON.stringify(message));
  return true;
}

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

function setConnected(connected) {
  for (const fieldset of document.querySelectorAll('fieldset.connected-only')) fieldset.disabled = !connected;
}

// ---- Server messages ---------------------------------------------------------

function receive(message) {
  switch (message.type) {
    case 'welcome':
      // A fresh connection knows nothing of us: say who we are and where we were.
      if (state.name !== null) {
        send({ type: 'hello', name: state.name });
        for (const room of state.rooms.keys()) send({ type: 'join', room });
      }
      break;
    case 'hello': {
      const first = state.name === null;
      state.name = message.name;
      ui.myName.textContent = message.name;
      ui.welcome.hidden = true;
      ui.chat.hidden = false;
      if (first) {
        ui.roomInput.value = 'lobby';
        ui.roomInput.focus();
      }
      break;
    }
    case 'joined':
      onJoined(message.room, message.members);
      break;
    case 'presence': {
      const room = state.rooms.get(message.room);
      if (room === undefined) break;
      if (message.event === 'join') room.members.push(message.name);
      else removeOne(room.members, message.name);
      renderMembers(room);
      addLine(room.log, { kind: 'system', text: `${message.name} ${message.event === 'join' ? 'joined' : 'left'}` });
      break;
    }
    case 'left':
      removeRoom(message.room);
      break;
    case 'said': {
      const room = state.rooms.get(message.room);
      if (room === undefined) break;
      addLine(room.log, { kind: message.from === state.name ? 'mine' : '', time: message.at, from: message.from, text: message.text });
      bumpUnread(message.room);
      break;
    }
    case 'whispered':
      addLine(whispersLog(), { kind: 'whisper', time: Date.now(), from: `${message.from} → you`, text: message.text });
      bumpUnread(WHISPERS);
      break;
    case 'error':
      // Before the name is accepted, the name form is the only thing that can have failed.
      if (state.name === null) ui.nameError.textContent = message.message;
      else showNotice(message.message);
      break;
  }
}

function onJoined(name, members) {
  let room = state.rooms.get(name);
  if (room === undefined) {
    room = createRoom(name);
    addLine(room.log, { kind: 'system', text: `You joined ${name}` });
    activate(name);
    $('input[name="text"]', room.view).focus();
  } else {
    addLine(room.log, { kind: 'system', text: 'Back online' });
  }
  room.members = [...members];
  renderMembers(room);
}

// ---- Rooms and views ---------------------------------------------------------

function createRoom(name) {
  const view = ui.roomTemplate.content.firstElementChild.cloneNode(true);
  view.dataset.view = name;
  const title = $('.room-title', view);
  title.id = `room-title-${name}`;
  title.textContent = `# ${name}`;
  view.setAttribute('aria-labelledby', title.id);
  const log = $('.log', view);
  log.setAttribute('aria-label', `Messages in ${name}`);
  $('.leave', view).addEventListener('click', () => send({ type: 'leave', room: name }));
  $('.say-form', view).addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('input[name="text"]', view);
    if (input.value.trim() !== '' && send({ type: 'say', room: name, text: input.value })) input.value = '';
  });
  $('fieldset', view).disabled = state.socket?.readyState !== WebSocket.OPEN;
  ui.views.append(view);

  const item = document.createElement('li');
  const tab = document.createElement('button');
  tab.type = 'button';
  tab.className = 'tab';
  tab.dataset.view = name;
  tab.append(`# ${name} `);
  const badge = document.createElement('span');
  badge.className = 'unread';
  badge.hidden = true;
  tab.append(badge);
  item.append(tab);
  ui.tabs.append(item);

  const room = { members: [], view, tab, log };
  state.rooms.set(name, room);
  state.unread.set(name, 0);
  state.tabs.set(name, tab);
  return room;
}

function removeRoom(name) {
  const room = state.rooms.get(name);
  if (room === undefined) return;
  state.rooms.delete(name);
  state.unread.delete(name);
  state.tabs.delete(name);
  room.view.remove();
  room.tab.parentElement.remove();
  if (state.active === name) activate([...state.rooms.keys()].at(-1) ?? WHISPERS);
}

function activate(view) {
  state.active = view;
  for (const element of ui.views.querySelectorAll('.view')) element.hidden = element.dataset.view !== view;
  for (const [name, tab] of state.tabs) {
    if (name === view) tab.setAttribute('aria-current', 'true');
    else tab.removeAttribute('aria-current');
  }
  state.unread.set(view, 0);
  renderUnread(view);
}

function bumpUnread(view) {
  if (view === state.active && !document.hidden) return;
  state.unread.set(view, (state.unread.get(view) ?? 0) + 1);
  renderUnread(view);
}

function renderUnread(view) {
  const badge = state.tabs.get(view)?.querySelector('.unread');
  if (badge == null) return;
  const count = state.unread.get(view) ?? 0;
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute('aria-label', `${count} unread`);
}

function renderMembers(room) {
  // A name can be here twice (two tabs); show it once, with the count.
  const counts = new Map();
  for (const name of room.members) counts.set(name, (counts.get(name) ?? 0) + 1);
  const list = $('.member-list', room.view);
  list.replaceChildren(
    ...[...counts.keys()]
      .sort((a, b) => a.localeCompare(b))
      .map((name) => {
        const item = document.createElement('li');
        const count = counts.get(name);
        item.textContent = `${name}${name === state.name ? ' (you)' : ''}${count > 1 ? ` ×${count}` : ''}`;
        return item;
      }),
  );
}

function whispersLog() {
  return $(`.view[data-view="${WHISPERS}"] .log`, ui.views);
}

/** Appends one line; user text only ever goes through textContent. */
function addLine(log, { kind = '', time, from, text }) {
  const stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const item = document.createElement('li');
  if (kind) item.className = kind;
  if (time !== undefined) {
    const stamp = document.createElement('time');
    stamp.dateTime = new Date(time).toISOString();
    stamp.textContent = new Date(time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    item.append(stamp);
  }
  if (from !== undefined) {
    const who = document.createElement('span');
    who.className = 'from';
    who.textContent = from;
    item.append(who);
  }
  item.append(text);
  log.append(item);
  while (log.children.length > MAX_LINES) log.firstElementChild.remove();
  if (stickToBottom) log.scrollTop = log.scrollHeight;
}

function removeOne(list, value) {
  const index = list.indexOf(value);
  if (index !== -1) list.splice(index, 1);
}

let noticeTimer;
function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (ui.notice.hidden = true), 6000);
}

// ---- Forms -------------------------------------------------------------------

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.nameInput.value.trim();
  if (name === '') return;
  ui.nameError.textContent = '';
  send({ type: 'hello', name });
});

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const room = ui.roomInput.value.trim();
  if (state.rooms.has(room)) {
    activate(room);
  } else if (send({ type: 'join', room })) {
    ui.roomInput.value = '';
  }
});

ui.whisperForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const to = ui.whisperForm.elements.to.value.trim();
  const textInput = ui.whisperForm.elements.text;
  if (to === '' || textInput.value.trim() === '') return;
  // The server does not echo whispers, so the sender's copy is written here.
  if (send({ type: 'whisper', to, text: textInput.value })) {
    addLine(whispersLog(), { kind: 'whisper mine', time: Date.now(), from: `you → ${to}`, text: textInput.value });
    textInput.value = '';
  }
});

ui.tabs.addEventListener('click', (event) => {
  const tab = event.target.closest('.tab');
  if (tab !== null) activate(tab.dataset.view);
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    state.unread.set(state.active, 0);
    renderUnread(state.active);
  }
});

setConnected(false);
activate(WHISPERS);
connect();
