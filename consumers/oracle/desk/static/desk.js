// The labelling desk page: renders the state the server streams, sends answers.
// Every value from a record goes in through textContent (never innerHTML): records are
// untrusted input from the floor.
// Every change is sent as JSON with the session's CSRF token (from /api/session, which
// no other site's page can read); the session cookie itself is HttpOnly.
// Views come from the live stream, from /api/state and with every answer's reply; each
// carries the server's version, and an older one never replaces a newer one on screen
// (a slow reply used to wipe the next card a live update had just shown).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KAFKA_DOWN = "Kafka unreachable: answers cannot be sent";
// Known labels on the wafer map, by class position (the same order as the keys).
const LABEL_COLOURS = ["#d92d20", "#12b76a", "#7a5af8", "#f79009", "#0ba5ec", "#ee46bc",
  "#667085", "#854a0e", "#155b75"];
let current = null;   // the card on screen
let busy = false;     // a request is on its way: skip and take are ignored meanwhile
let csrf = "";        // this session's token, sent with every change
let shownVersion = -1; // the server version of the view on screen
let shownInstance = null; // which desk process made it

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3) : String(+value.toPrecision(6));
}

function age(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function table(rows) {
  const body = el("tbody");
  for (const [name, value] of rows) body.append(el("tr", {}, el("td", {}, name), el("td", {}, fmt(value))));
  return el("table", {}, body);
}

function limitsText(m) {
  if (m.lo === null && m.hi === null) return m.units ? m.units : "";
  const units = m.units ? ` ${m.units}` : "";
  if (m.lo === null) return `≤ ${fmt(m.hi)}${units}`;
  if (m.hi === null) return `≥ ${fmt(m.lo)}${units}`;
  return `${fmt(m.lo)} … ${fmt(m.hi)}${units}`;
}

function zBar(z) {
  // How unusual against the product's recent population: a bar out from the centre,
  // full at |z| = 4, amber past 2, red past 3.
  const cell = el("td", { class: "z" });
  if (z === null || z === undefined) return cell;
  const width = Math.min(Math.abs(z), 4) / 4 * 50;
  const tone = Math.abs(z) >= 3 ? "far" : Math.abs(z) >= 2 ? "odd" : "";
  const fill = el("span", { class: `zfill ${tone}`,
    style: `width:${width.toFixed(1)}%;${z < 0 ? `right:50%` : `left:50%`}` });
  cell.append(el("span", { class: "ztrack", title: `z = ${z}` }, fill),
    el("span", { class: "znum" }, (z > 0 ? "+" : "") + z.toFixed(1)));
  return cell;
}

function measurementTable(card) {
  const head = el("thead", {}, el("tr", {}, el("th", {}, "test"), el("th", {}, "value"),
    el("th", {}, "limits"), el("th", {}, "z")));
  const body = el("tbody");
  for (const m of card.measurements) {
    const value = el("td", { class: m.value === null ? "missing" : "num" }, fmt(m.value));
    if (m.out) {
      value.classList.add("out");
      value.append(el("span", { class: "out-mark", title: `below/above its limit` },
        m.out === "low" ? " ▼" : " ▲"));
    }
    body.append(el("tr", { class: m.out ? "out-row" : "", "data-name": m.name },
      el("td", {}, m.name), value, el("td", { class: "limits" }, limitsText(m)), zBar(m.z)));
  }
  const box = el("div", {}, el("table", { class: "values" }, head, body));
  if (card.measurements_total > card.measurements.length) {
    box.append(el("p", { class: "help" },
      `${card.measurements_total - card.measurements.length} more not shown`));
  }
  return box;
}

function outcomeBox(outcome) {
  const rows = [];
  if (outcome.hard_bin !== undefined) rows.push(["hard bin", outcome.hard_bin]);
  if (outcome.soft_bin !== undefined) rows.push(["soft bin", outcome.soft_bin]);
  if (outcome.retest) rows.push(["retest", "yes"]);
  if (outcome.no_parametric) rows.push(["parametric", "none (the flow stopped first)"]);
  const box = el("div", { class: "outcome" });
  if (rows.length) box.append(table(rows));
  if (outcome.failed_tests) {
    const list = el("ul", { class: "failed" });
    for (const name of outcome.failed_tests) list.append(el("li", {}, name));
    const more = outcome.failed_tests_total - outcome.failed_tests.length;
    box.append(el("h3", {}, `Failing tests (${outcome.failed_tests_total})`), list);
    if (more > 0) box.append(el("p", { class: "help" }, `${more} more`));
  }
  return box;
}

function influenceList(items) {
  const list = el("ol", { class: "influences" });
  for (const item of items) {
    // A tree's path step: the test taken and this record's value; else a linear push.
    const shown = item.test
      ? `${item.test} (${item.weight === null ? "missing" : fmt(item.weight)})`
      : (item.weight > 0 ? "+" : "") + fmt(item.weight);
    list.append(el("li", {}, el("span", {}, item.feature), el("span", { class: "num" }, shown)));
  }
  return list;
}

function bars(card) {
  if (!card.proba.length) {
    return el("p", { class: "no-prediction" }, "no prediction yet (the model is warming up)");
  }
  const box = el("div", { class: "proba" });
  for (const [name, p] of card.proba) {
    const fill = el("div", { class: "fill", style: `width:${(100 * p).toFixed(1)}%` });
    const row = el("div", { class: "bar" + (name === card.predicted ? " predicted" : "") },
      el("span", { class: "name" }, name), el("div", { class: "track" }, fill),
      el("span", { class: "num" }, p.toFixed(3)));
    box.append(row);
  }
  return box;
}

function waferMap(map, classes) {
  // The product's die grid as far as the desk has seen it, as a round wafer: faint dies,
  // the other queried dies of this wafer in the colour of their label (amber while
  // unlabelled), this die outlined in black with a cross, so it stands out of any colour.
  const cx = (map.min_x + map.max_x + 1) / 2, cy = (map.min_y + map.max_y + 1) / 2;
  // Dies seen so far may not span the wafer, or may sit in a corner of their extent:
  // the circle grows to hold every one of them.
  const far = [[map.x, map.y], ...map.others.map(([x, y]) => [x, y])].map(([x, y]) => Math.hypot(x + .5 - cx, y + .5 - cy) + .75);
  const r = Math.max((Math.max(map.max_x - map.min_x, map.max_y - map.min_y) + 1) / 2 + .5, 2, ...far);
  const box = svg("svg", { class: "wafer", viewBox: `${cx - r - .5} ${cy - r - .5} ${2 * r + 1} ${2 * r + 1}`,
    role: "img", "aria-label": `die ${map.x}, ${map.y} on the wafer` });
  box.append(svg("circle", { cx, cy, r, fill: "#f9fafb", stroke: "#98a2b3", "stroke-width": .15 }));
  if (2 * r <= 120) {
    for (let x = Math.floor(cx - r); x < cx + r; x++) {
      for (let y = Math.floor(cy - r); y < cy + r; y++) {
        if (Math.hypot(x + .5 - cx, y + .5 - cy) <= r - .5) {
          box.append(svg("rect", { x: x + .06, y: y + .06, width: .88, height: .88, fill: "#e4e7ec" }));
        }
      }
    }
  }
  for (const [x, y, label] of map.others) {
    const known = label !== null && label !== undefined;
    const index = known ? classes.indexOf(label) : -1;
    const fill = !known ? "#f5b83d" : LABEL_COLOURS[index >= 0 ? index % LABEL_COLOURS.length : 6];
    const die = svg("rect", { x: x + .06, y: y + .06, width: .88, height: .88, fill,
      class: known ? "labelled" : "queried" });
    const title = svg("title", {});
    title.textContent = known ? `${x}, ${y}: ${label}` : `${x}, ${y}: not labelled yet`;
    die.append(title);
    box.append(die);
  }
  // Lines as thick on a small wafer as on a large one (the view box scales with it).
  const line = Math.min(.25, Math.max(.06, r / 40));
  box.append(svg("rect", { x: map.x - .2, y: map.y - .2, width: 1.4, height: 1.4, fill: "#fff",
    stroke: "#101828", "stroke-width": line, class: "here" }));
  box.append(svg("path", { d: `M${map.x + .1} ${map.y + .1}L${map.x + .9} ${map.y + .9}` +
    `M${map.x + .9} ${map.y + .1}L${map.x + .1} ${map.y + .9}`, stroke: "#d92d20",
    "stroke-width": line * 1.2 }));
  return box;
}

function waferLegend(map, classes) {
  const seen = new Set(map.others.map((die) => die[2]).filter((label) => label !== null));
  const legend = el("p", { class: "legend" }, el("span", { class: "swatch here" }), "this die");
  for (const label of [...seen].slice(0, 9)) {
    const index = classes.indexOf(label);
    const colour = LABEL_COLOURS[index >= 0 ? index % LABEL_COLOURS.length : 6];
    legend.append(el("span", { class: "swatch", style: `background:${colour}` }), label);
  }
  if (map.others.some((die) => die[2] === null)) {
    legend.append(el("span", { class: "swatch", style: "background:#f5b83d" }), "asked, not labelled");
  }
  return legend;
}

function answerButtons(card) {
  const row = el("div", { class: "answers" });
  card.classes.forEach((name, i) => {
    const attrs = { class: "class-btn", type: "button", "data-label": name };
    const button = el("button", attrs);
    if (i < 9) button.append(el("kbd", {}, String(i + 1)));
    button.append(name);
    button.addEventListener("click", () => send(name));
    row.append(button);
  });
  const input = el("input", { id: "new-class", placeholder: "new class (n)", maxlength: "256",
    "aria-label": "new class" });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && input.value.trim()) send(input.value.trim());
    if (event.key === "Escape") input.blur();
  });
  const add = el("button", { type: "button", id: "new-class-send" }, "add");
  add.addEventListener("click", () => input.value.trim() && send(input.value.trim()));
  const skip = el("button", { type: "button", id: "skip" }, el("kbd", {}, "s"), "skip");
  skip.addEventListener("click", skipCard);
  row.append(input, add, skip);
  return row;
}

function emptyText(state) {
  if (state.status.kafka === "unreachable") return "Kafka unreachable: no card can be claimed until it is back.";
  if (!state.status.caught_up) return "Reading the topics…";
  if (state.claiming || state.queue_size > 0) return "Opening the next card…";
  return "Nothing to label. New queries appear here.";
}

function renderCard(card, state) {
  const area = document.getElementById("card-area");
  const open = current && card && current.query_id === card.query_id;
  const typing = document.activeElement && document.activeElement.id === "new-class";
  const typed = typing ? document.activeElement.value : "";
  current = card;
  if (!card) {
    const waiting = state.claiming || state.queue_size > 0;
    area.replaceChildren(el("p", { class: waiting ? "empty waiting" : "empty" }, emptyText(state)));
    return;
  }
  const title = el("h1", {}, el("span", { class: `badge ${card.reason}` }, card.reason), ` ${card.model_key}`);
  const meta = el("p", { class: "meta" },
    `uncertainty ${card.uncertainty.toFixed(3)} (threshold ${fmt(card.threshold)}) · predicted `,
    el("strong", {}, card.predicted ?? "—"),
    ` · asked ${age(card.age_s)} ago · expires in ${age(card.expires_in_s)} · ${card.query_id}`);
  const right = el("div", {}, el("h2", {}, "Model"), bars(card));
  if (card.influences && card.influences.length) {
    right.append(el("h2", {}, "Most influential"), influenceList(card.influences));
  }
  if (card.wafer_map) {
    right.append(el("h2", {}, "Wafer"), waferMap(card.wafer_map, card.classes),
      waferLegend(card.wafer_map, card.classes));
  }
  const left = el("div", {}, el("h2", {}, "Record"), table(card.fields));
  if (card.outcome && Object.keys(card.outcome).length) left.append(el("h2", {}, "Outcome"), outcomeBox(card.outcome));
  const panels = el("div", { class: "panels" }, left,
    el("div", { class: "measurements" }, el("h2", {}, "Measurements"), measurementTable(card)),
    right);
  const box = el("article", { class: "card", id: "card", "data-query-id": card.query_id },
    title, meta, panels, answerButtons(card));
  area.replaceChildren(box);
  if (open && typing) {  // a live update must not eat what is being typed
    const input = document.getElementById("new-class");
    input.value = typed;
    input.focus();
  }
}

function renderQueue(state) {
  const list = document.getElementById("queue");
  list.replaceChildren(...state.queue.map((q) => {
    const row = el("li", { "data-query-id": q.query_id, title: `open ${q.query_id}`, tabindex: "0",
      role: "button" },
      el("span", { class: `badge ${q.reason}` }, q.reason), el("span", {}, q.model_key),
      el("span", { class: "u" }, `${q.uncertainty.toFixed(2)} · ${age(q.age_s)}`));
    row.addEventListener("click", () => take(q.query_id));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") take(q.query_id); });
    return row;
  }));
  document.getElementById("queue-size").textContent = `(${state.queue_size})`;
}

function renderBanner(state) {
  const banner = document.getElementById("banner");
  const down = state.status.kafka === "unreachable";
  banner.textContent = down ? KAFKA_DOWN : "";
  banner.hidden = !down;
}

function renderStatus(state) {
  const s = state.status;
  const parts = [s.caught_up ? `${s.open} open` : "reading the topics…",
    `${s.claimed_by_others} with others`, `${s.labelled_here} labelled here`,
    `${s.answered_elsewhere} answered elsewhere`, `${s.expired} expired`];
  if (s.malformed_requests) parts.push(`${s.malformed_requests} malformed requests skipped`);
  if (s.malformed_labels) parts.push(`${s.malformed_labels} malformed labels`);
  if (s.problem) parts.push(s.problem);
  const status = document.getElementById("status");
  status.textContent = parts.join(" · ");
  status.classList.toggle("problem", Boolean(s.problem));
  document.getElementById("who").textContent = `labelling as ${state.labeler}`;
}

function render(state) {
  if (!state) return;
  // Older than what is on screen: ignored. A restarted desk counts from 0 again.
  if (state.instance === shownInstance && state.version < shownVersion) return;
  shownInstance = state.instance;
  shownVersion = state.version;
  renderCard(state.card, state);
  renderQueue(state);
  renderStatus(state);
  renderBanner(state);
}

function toast(message, isError) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
}

function toLogin(response) {
  // The session ended (expired, logged out elsewhere, account removed): log in again.
  if (response.status === 401) location.assign("/");
  return response.status === 401;
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body) });
  toLogin(response);
  return [response.ok, await response.json()];
}

async function refresh() {
  const response = await fetch("/api/state");
  if (response.ok) render(await response.json());
  else toLogin(response);
}

// Answers go one after another. The next card can reach the screen (by the live stream)
// while the previous answer's reply is still being read: a key pressed on it then is
// queued behind that answer, not dropped (the engineer saw the card, so the key counts).
let answers = Promise.resolve();
const answering = new Set();  // cards whose answer is on its way: a second key is a repeat

function send(label) {
  if (!current || answering.has(current.query_id)) return;
  const queryId = current.query_id;
  answering.add(queryId);
  answers = answers.then(() => sendNow(queryId, label))
                   .finally(() => answering.delete(queryId));
}

async function sendNow(queryId, label) {
  busy = true;
  try {
    const [ok, reply] = await post("/api/label", { query_id: queryId, label });
    toast(ok ? `${reply.query_id}: labelled ${reply.label}` : reply.error, !ok);
    if (ok && reply.view) render(reply.view);  // the next card, already claimed
    else await refresh();
  } catch (error) {
    toast(`not sent: ${error}`, true);
  } finally {
    busy = false;
  }
}

async function skipCard() {
  if (!current || busy) return;
  busy = true;
  try {
    const [ok, reply] = await post("/api/skip", { query_id: current.query_id });
    if (ok && reply.view) render(reply.view);
    else await refresh();
  } finally {
    busy = false;
  }
}

async function take(queryId) {
  if (busy || (current && current.query_id === queryId)) return;
  busy = true;
  try {
    const [ok, reply] = await post("/api/take", { query_id: queryId });
    if (!ok) toast(reply.error, true);
    if (ok && reply.view) render(reply.view);
    else await refresh();
  } finally {
    busy = false;
  }
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!current) return;
  if (/^[1-9]$/.test(event.key)) {
    const name = current.classes[Number(event.key) - 1];
    if (name !== undefined) send(name);
  } else if (event.key === "n") {
    event.preventDefault();
    document.getElementById("new-class").focus();
  } else if (event.key === "s") {
    skipCard();
  }
});

async function logOut() {
  const [ok, reply] = await post("/logout", {});
  if (ok) location.assign(reply.next);
}

async function start() {
  const response = await fetch("/api/session");
  if (toLogin(response) || !response.ok) return;
  const session = await response.json();
  csrf = session.csrf;
  document.getElementById("who").textContent = `labelling as ${session.labeler}`;
  const logout = document.getElementById("logout");
  logout.hidden = !session.logs_in;  // with a fixed name or a proxy, there is no logging out
  logout.addEventListener("click", logOut);
  const events = new EventSource("/api/events");
  events.onmessage = (event) => render(JSON.parse(event.data));
  events.onerror = () => {
    document.getElementById("status").textContent = "connection lost: reconnecting…";
    fetch("/api/session").then(toLogin, () => {});  // refused because the session ended?
  };
}

start();
