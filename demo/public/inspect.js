// The live view: renders the model /inspect/events streams (see demo/live-view.ts).
const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

function connectionItem(connection) {
  const detail = [
    connection.user === undefined ? 'no user' : `user ${connection.user}`,
    connection.rooms?.length ? `rooms ${connection.rooms.join(', ')}` : 'no room',
    connection.outbox === undefined ? undefined : `outbox ${connection.outbox}`,
  ].filter(Boolean);
  return element(
    'li',
    { 'data-connection': connection.id, 'data-state': connection.state },
    element('code', {}, connection.id),
    ' ',
    element('span', { class: 'state' }, connection.state),
    ' ',
    element('span', { class: 'detail' }, connection.state === 'closed' ? '' : detail.join(' · ')),
  );
}

function render(model) {
  const children = element('ul');
  for (const connection of model.connections) children.append(connectionItem(connection));
  for (const connection of model.closed) children.append(connectionItem(connection));
  const supervisor = element(
    'li',
    { 'data-actor': model.supervisor.id, 'data-state': model.supervisor.state },
    element('strong', {}, model.supervisor.id),
    ' ',
    element('span', { class: 'state' }, model.supervisor.state),
    children,
  );
  $('#tree').replaceChildren(supervisor);
  const shown = model.connections.length < model.counts.connections ? ` (first ${model.connections.length} listed)` : '';
  $('#counts').textContent = `${model.counts.connections} connections${shown} · ${model.counts.rooms} rooms · ${model.counts.users} users`;
  const rows = (record) =>
    Object.entries(record).map(([name, ids]) => element('tr', {}, element('td', {}, name), element('td', {}, ids.join(', '))));
  $('#rooms tbody').replaceChildren(...rows(model.rooms));
  $('#users tbody').replaceChildren(...rows(model.users));
}

const status = $('#status');
const events = new EventSource('/inspect/events');
events.onopen = () => {
  status.dataset.state = 'live';
  status.textContent = 'Live';
};
events.onerror = () => {
  status.dataset.state = 'reconnecting';
  status.textContent = 'Disconnected; retrying…';
};
events.onmessage = (message) => render(JSON.parse(message.data));
