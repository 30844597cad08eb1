'use strict';
// The faas-rs portal: lists, invokes, deploys and deletes functions through the gateway's own REST API.
// Every URL is relative to this page (.../ui/), so the portal works wherever the gateway is mounted.
// Data from the server is only ever set as text (textContent, value), never parsed as HTML.

const DEFAULT_NAMESPACE = 'openfaas-fn';
const REFRESH_MS = 5000;
const SHOWN_BODY_CHARS = 1 << 20;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

const state = { namespace: '', functions: [], loaded: false };
const $ = (selector) => document.querySelector(selector);
const apiUrl = (path) => new URL('../' + path, document.baseURI).toString();

async function errorText(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      return `${response.status}: ${body.error}` + (body.field ? ` (field ${body.field})` : '');
    }
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}` + (text ? `: ${text.slice(0, 500)}` : '');
}

async function callApi(method, path, value) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (value !== undefined) {
    init.body = JSON.stringify(value);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(apiUrl(path), init);
  if (!response.ok) throw new Error(await errorText(response));
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function showBanner(message) {
  const banner = $('#banner');
  banner.textContent = message || '';
  banner.hidden = !message;
}

function namespaceQuery() {
  return state.namespace ? `?namespace=${encodeURIComponent(state.namespace)}` : '';
}

// `name`, or `name.namespace` outside the default namespace, as in /function/{name}.{namespace}
function qualifiedName(fn) {
  return fn.namespace && fn.namespace !== DEFAULT_NAMESPACE ? `${fn.name}.${fn.namespace}` : fn.name;
}

function invokeUrl(prefix, fn, path) {
  let rest = (path || '').trim();
  if (rest && !rest.startsWith('/')) rest = '/' + rest;
  return apiUrl(`${prefix}/${encodeURIComponent(qualifiedName(fn))}${rest}`);
}

function keyValues(text, what) {
  const map = {};
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`${what}, line ${index + 1}: expected KEY=value, got "${line}"`);
    map[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return map;
}

function pairs(map) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join('\n') : '—';
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderList() {
  const tbody = $('#functions tbody');
  const rows = state.functions
    .slice()
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((fn) => {
      const tr = document.createElement('tr');
      tr.dataset.function = fn.name;
      tr.tabIndex = 0;
      tr.append(
        cell(fn.name),
        cell(fn.image || '—'),
        cell(fn.envProcess || '—'),
        cell(`${fn.availableReplicas ?? '?'}/${fn.replicas ?? '?'}`, 'num'),
        cell(String(Math.round(fn.invocationCount || 0)), 'num'),
      );
      const open = () => { location.hash = `#/function/${encodeURIComponent(fn.name)}`; };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (event) => { if (event.key === 'Enter') open(); });
      if (fn.name === selectedName()) tr.classList.add('selected');
      return tr;
    });
  tbody.replaceChildren(...rows);
  $('#empty').hidden = !state.loaded || rows.length > 0;
}

async function loadFunctions() {
  try {
    state.functions = (await callApi('GET', 'system/functions' + namespaceQuery())) || [];
    state.loaded = true;
    showBanner('');
  } catch (error) {
    showBanner(`Cannot list functions: ${error.message}`);
  }
  renderList();
  renderDetail();
}

async function loadInfo() {
  try {
    const info = await callApi('GET', 'system/info');
    const provider = info.provider || {};
    const release = info.version && info.version.release;
    $('#provider').textContent = [provider.provider, provider.orchestration,
      release ? `gateway ${release}` : '', info.arch].filter(Boolean).join(' · ');
  } catch (error) {
    showBanner(`Cannot read the gateway's info: ${error.message}`);
  }
}

async function loadNamespaces() {
  let names = [];
  try {
    names = (await callApi('GET', 'system/namespaces')) || [];
  } catch (_) { /* a provider without namespaces: the default one only */ }
  const select = $('#namespace');
  select.replaceChildren(...names.map((name) => new Option(name, name)));
  select.parentElement.hidden = names.length === 0;
  state.namespace = names.includes(DEFAULT_NAMESPACE) ? DEFAULT_NAMESPACE : (names[0] || '');
  select.value = state.namespace;
}

function selectedName() {
  const match = /^#\/function\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function selectedFunction() {
  const name = selectedName();
  return name === null ? null : state.functions.find((fn) => fn.name === name) || null;
}

let shownDetail = null;

function renderDetail() {
  const fn = selectedFunction();
  const section = $('#detail');
  section.hidden = !fn;
  if (!fn) {
    if (state.loaded && selectedName() !== null) showBanner(`No function "${selectedName()}" in this namespace.`);
    return;
  }
  $('#detail-name').textContent = fn.name;
  const url = invokeUrl('function', fn, '');
  const fields = [
    ['URL', url],
    ['Namespace', fn.namespace || state.namespace || DEFAULT_NAMESPACE],
    ['Image', fn.image || '—'],
    ['Process', fn.envProcess || '—'],
    ['Replicas', `${fn.availableReplicas ?? '?'} available of ${fn.replicas ?? '?'}`],
    ['Invocations', String(Math.round(fn.invocationCount || 0))],
    ['Environment', pairs(fn.envVars)],
    ['Labels', pairs(fn.labels)],
    ['Annotations', pairs(fn.annotations)],
    ['Created', fn.createdAt || '—'],
  ];
  $('#detail-fields').replaceChildren(...fields.flatMap(([name, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.field = name.toLowerCase();
    return [dt, dd];
  }));
  if (shownDetail !== fn.name) {
    shownDetail = fn.name;
    $('#result').hidden = true;
    $('#logs').hidden = true;
    $('#logs-status').textContent = '';
    $('#scale-status').textContent = '';
    $('#scale').elements.replicas.value = fn.replicas ?? 0;
  }
}

function showResult(statusText, ok, meta, body) {
  const status = $('#result-status');
  status.textContent = statusText;
  status.className = `status ${ok ? 'ok' : 'bad'}`;
  $('#result-meta').textContent = meta;
  $('#result-body').textContent = body.length > SHOWN_BODY_CHARS
    ? `${body.slice(0, SHOWN_BODY_CHARS)}\n… ${body.length - SHOWN_BODY_CHARS} more characters not shown`
    : body;
  $('#result').hidden = false;
}

function invocationInit(form) {
  const method = form.elements.method.value;
  const init = { method, headers: {}, cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = form.elements.body.value;
    init.headers['Content-Type'] = form.elements.contentType.value || 'text/plain';
  }
  return init;
}

async function withBusy(buttons, action) {
  buttons.forEach((button) => { button.disabled = true; });
  try {
    await action();
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

async function invokeSync(fn, form) {
  const started = performance.now();
  try {
    const response = await fetch(invokeUrl('function', fn, form.elements.path.value), invocationInit(form));
    const text = await response.text();
    const elapsed = performance.now() - started;
    const meta = [`${elapsed.toFixed(1)} ms round trip`];
    const duration = response.headers.get('X-Duration-Seconds');
    if (duration) meta.push(`function ${(parseFloat(duration) * 1000).toFixed(1)} ms`);
    const callId = response.headers.get('X-Call-Id');
    if (callId) meta.push(`call ${callId}`);
    showResult(`${response.status} ${response.statusText}`, response.ok, meta.join(' · '), text);
  } catch (error) {
    showResult('request failed', false, '', error.message);
  }
  loadFunctions();
}

async function invokeAsync(fn, form) {
  let callId;
  try {
    const response = await fetch(invokeUrl('async-function', fn, form.elements.path.value), invocationInit(form));
    if (response.status !== 202) {
      showResult(`${response.status} ${response.statusText}`, false, '', await errorText(response));
      return;
    }
    callId = response.headers.get('X-Call-Id');
  } catch (error) {
    showResult('request failed', false, '', error.message);
    return;
  }
  showResult('202 Accepted', true, `queued as call ${callId}`, '');
  // follow the call's record until it ends (at most a minute)
  for (let attempt = 0; attempt < 120; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    let record;
    try {
      record = await callApi('GET', `system/invocations/${encodeURIComponent(callId)}`);
    } catch (error) {
      showResult('202 Accepted', true, `call ${callId}: ${error.message}`, '');
      return;
    }
    const body = record.result ? (record.result.encoding === 'base64'
      ? `(base64) ${record.result.body}` : record.result.body) : (record.error || '');
    const meta = [`call ${callId}`, record.status, `${record.attempts || 0} attempt(s)`];
    if (record.durationSeconds !== undefined) meta.push(`function ${(record.durationSeconds * 1000).toFixed(1)} ms`);
    const finished = TERMINAL.has(record.status);
    const ok = record.status !== 'failed' && record.status !== 'cancelled';
    showResult(record.statusCode ? `${record.statusCode} (async)` : `${record.status} (async)`, ok, meta.join(' · '), body);
    if (finished) break;
  }
  loadFunctions();
}

async function scale(fn, form) {
  const replicas = Number(form.elements.replicas.value);
  const status = $('#scale-status');
  try {
    await callApi('POST', `system/scale-function/${encodeURIComponent(fn.name)}${namespaceQuery()}`,
      { serviceName: fn.name, replicas });
    status.textContent = `scaling to ${replicas}…`;
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  await loadFunctions();
}

async function showLogs(fn) {
  const status = $('#logs-status');
  status.textContent = 'Loading…';
  const query = new URLSearchParams({ name: fn.name, tail: '200' });
  if (state.namespace) query.set('namespace', state.namespace);
  try {
    const response = await fetch(apiUrl(`system/logs?${query}`), { cache: 'no-store' });
    if (!response.ok) throw new Error(await errorText(response));
    const lines = (await response.text()).split('\n').filter(Boolean).map((line) => {
      try {
        const entry = JSON.parse(line);
        return `${entry.timestamp || ''} ${entry.instance || ''} ${entry.text ?? ''}`;
      } catch (_) {
        return line;
      }
    });
    const logs = $('#logs');
    logs.textContent = lines.join('\n');
    logs.hidden = false;
    status.textContent = lines.length ? `${lines.length} line(s)` : 'no lines yet';
  } catch (error) {
    status.textContent = error.message;
  }
}

async function deleteFunction(fn) {
  if (!window.confirm(`Delete the function "${fn.name}"?`)) return;
  try {
    await callApi('DELETE', 'system/functions' + namespaceQuery(), { functionName: fn.name, namespace: fn.namespace || state.namespace || undefined });
    location.hash = '#/';
    await loadFunctions();
  } catch (error) {
    showBanner(`Cannot delete ${fn.name}: ${error.message}`);
  }
}

async function deploy(form) {
  const status = $('#deploy-status');
  status.className = '';
  let request;
  try {
    request = {
      service: form.elements.service.value.trim(),
      image: form.elements.image.value.trim(),
      envVars: keyValues(form.elements.envVars.value, 'Environment'),
      labels: keyValues(form.elements.labels.value, 'Labels'),
    };
  } catch (error) {
    status.textContent = error.message;
    status.className = 'error';
    return;
  }
  const process = form.elements.envProcess.value.trim();
  if (process) request.envProcess = process;
  if (state.namespace) request.namespace = state.namespace;
  status.textContent = 'Deploying…';
  try {
    await callApi('POST', 'system/functions', request);
  } catch (error) {
    status.textContent = error.message;
    status.className = 'error';
    return;
  }
  status.textContent = '';
  form.reset();
  location.hash = `#/function/${encodeURIComponent(request.service)}`;
  await loadFunctions();
}

function route() {
  const deploying = location.hash === '#/deploy';
  $('#deploy').hidden = !deploying;
  if (!deploying && !selectedName()) showBanner('');
  renderList();
  renderDetail();
  if (deploying) $('#deploy-form').elements.service.focus();
}

document.addEventListener('DOMContentLoaded', async () => {
  $('#namespace').addEventListener('change', (event) => {
    state.namespace = event.target.value;
    location.hash = '#/';
    loadFunctions();
  });
  const sync = $('#invoke-sync');
  const asyncButton = $('#invoke-async');
  $('#invoke').addEventListener('submit', (event) => {
    event.preventDefault();
    const fn = selectedFunction();
    if (fn) withBusy([sync, asyncButton], () => invokeSync(fn, event.target));
  });
  asyncButton.addEventListener('click', () => {
    const fn = selectedFunction();
    if (fn) withBusy([sync, asyncButton], () => invokeAsync(fn, $('#invoke')));
  });
  $('#scale').addEventListener('submit', (event) => {
    event.preventDefault();
    const fn = selectedFunction();
    if (fn) scale(fn, event.target);
  });
  $('#show-logs').addEventListener('click', () => {
    const fn = selectedFunction();
    if (fn) showLogs(fn);
  });
  $('#delete').addEventListener('click', () => {
    const fn = selectedFunction();
    if (fn) deleteFunction(fn);
  });
  $('#deploy-form').addEventListener('submit', (event) => {
    event.preventDefault();
    deploy(event.target);
  });
  window.addEventListener('hashchange', route);
  await Promise.all([loadInfo(), loadNamespaces()]);
  await loadFunctions();
  route();
  document.body.dataset.ready = 'true';
  setInterval(() => { if (!document.hidden) loadFunctions(); }, REFRESH_MS);
});
