// The berth demo chat page. Plain browser JavaScript, no build step: berth/client
// comes through the import map in index.html. The chat protocol is in demo/README.md.
import { createClient } from 'berth/client';

const WHISPERS = '@whispers';
/** Lines kept per conversation, so a long session does not grow the page without bound. */
const MAX_LINES = 500;
/** The server's rule for names, checked here first: a refused upgrade looks like a network error to a page. */
const MAX_NAME_LENGTH = 32;

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
  /** The berth/client, once a name is chosen. */
  client: null,
  name: null,
  /** Every connection id this page has had: presence about them is this page's own, told by its own lines. */
  ids: new Set(),
  /** Set when an open connection dropped, until the client says how its session came back. */
  away: false,
  /** room → { members: string[], view, tab, log } */
  rooms: new Map(),
  active: WHISPERS,
  unread: new Map([[WHISPERS, 0]]),
  /** view → its tab button */
  tabs: new Map([[WHISPERS, $('.tab', ui.tabs)]]),
};

// ---- Connection --------------------------------------------------------------

const STATUS = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Connection lost — reconnecting…',
  closing: 'Closing…',
  closed: 'Disconnected',
};

/** Connects as `name`; berth/client reconnects and resumes by itself from here on. */
function start(name) {
  state.name = name;
  ui.myName.textContent = name;
  ui.welcome.hidden = true;
  ui.chat.hidden = false;
  ui.roomInput.value = 'lobby';
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('name', name);
  const client = createClient(url.href);
  state.client = client;
  client.on('state', onState);
  client.on('welcome', ({ id }) => state.ids.add(id));
  client.on('resumed', onResumed);
  // The server sends JSON text only.
  client.on('message', ({ data }) => typeof data === 'string' && receive(JSON.parse(data)));
  client.on('error', ({ message }) => showNotice(message));
  onState(client.state);
}

function onState(next) {
  const was = ui.status.dataset.state;
  ui.status.dataset.state = next;
  ui.status.textContent = STATUS[next] ?? next;
  setConnected(next === 'open');
  if (next === 'reconnecting' && was === 'open') {
    state.away = true;
    for (const room of state.rooms.values()) addLine(room.log, { kind: 'system', text: 'Connection lost — reconnecting…' });
  } else if (next === 'open' && state.away) {
    // Open again with no `resumed`: the server kept no session, so nothing of the gap is known.
    lostWhileAway('the server kept no session');
  } else if (next === 'open' && was === 'connecting' && state.rooms.size === 0) {
    ui.roomInput.focus();
  } else if (next === 'closed') {
    showNotice('Disconnected for good. Reload the page to come back.');
  }
}

/** Back after a drop: with everything missed replayed just before this, or not. */
function onResumed({ recovered, lost, reason }) {
  if (recovered) {
    state.away = false;
    for (const room of state.rooms.values()) addLine(room.log, { kind: 'system', text: 'Back online — nothing missed' });
    return;
  }
  lostWhileAway(lost.length > 0 ? `lost: ${lost.map(({ stream, reason }) => `${stream} (${reason})`).join(', ')}` : reason);
}

/** The connection started fresh: say so, and join the rooms again (the sends go out once it is open). */
function lostWhileAway(why) {
  state.away = false;
  const text = `Back online, but messages sent while you were away may be missing (${why})`;
  for (const room of state.rooms.values()) addLine(room.log, { kind: 'system lost', text });
  showNotice(text);
  for (const room of state.rooms.keys()) state.client.send(JSON.stringify({ type: 'join', room }));
}

function send(message) {
  if (state.client?.state !== 'open') {
    showNotice('Not connected; try again in a moment.');
    return false;
  }
  return state.client.send(JSON.stringify(message));
}

function setConnected(connected) {
  for (const fieldset of document.querySelectorAll('fieldset.connected-only')) fieldset.disabled = !connected;
}

// ---- Server messages ---------------------------------------------------------

function receive(message) {
  switch (message.type) {
    case 'joined':
      onJoined(message.room, message.members);
      break;
    case 'presence': {
      const room = state.rooms.get(message.room);
      // This page's own comings and goings (its lost connection's leave, replayed) are told by its own lines.
      if (room === undefined || state.ids.has(message.id)) break;
      if (message.event === 'join') room.members.push(message.name);
      else removeOne(room.members, message.name);
      renderMembers(room);
      const what = message.event === 'join' ? (message.resumed ? 'is back' : 'joined') : message.dropped ? 'lost connection' : 'left';
      addLine(room.log, { kind: 'system', text: `${message.name} ${what}` });
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
      showNotice(message.message);
      break;
  }
}

/** A room joined, or its members as they are now (joined again, or back after a drop). */
function onJoined(name, members) {
  let room = state.rooms.get(name);
  if (room === undefined) {
    room = createRoom(name);
    addLine(room.log, { kind: 'system', text: `You joined ${name}` });
    activate(name);
    $('input[name="text"]', room.view).focus();
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
  $('fieldset', view).disabled = state.client?.state !== 'open';
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

/** A name as the server takes it: trimmed, 1–32 characters (code points, as a person counts them). */
function validName(value) {
  const name = value.trim();
  const length = [...name].length;
  return length >= 1 && length <= MAX_NAME_LENGTH ? name : null;
}

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = validName(ui.nameInput.value);
  if (name === null) {
    ui.nameError.textContent = `A name is 1–${MAX_NAME_LENGTH} characters (spaces around it do not count).`;
    return;
  }
  ui.nameError.textContent = '';
  start(name);
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
