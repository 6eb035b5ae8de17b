// The dashboard's entry point: hash router, one shared live stream, the token dialog.
//
//   #/               fleet view       (fleet.js)
//   #/meter/<id>     meter view       (meter.js)
//   #/gateway        gateway view     (gateway.js)

import { getToken, onAuthRequired, openLiveStream, setToken } from "./api.js";
import { h } from "./dom.js";
import { mountFleet } from "./fleet.js";
import { mountGateway } from "./gateway.js";
import { mountMeter } from "./meter.js";

const root = document.getElementById("view");
const liveBadge = document.getElementById("live-state");
const tokenButton = document.getElementById("token-button");
let current = null;
let stopLive = null;

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (current) current.unmount();
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === (hash.startsWith("#/meter/") ? "#/" : hash));
  }
  const meter = /^#\/meter\/(\d{12})$/.exec(hash);
  if (meter) current = mountMeter(root, meter[1], { navigate });
  else if (hash === "#/gateway") current = mountGateway(root, { navigate });
  else current = mountFleet(root, { navigate });
}

const LIVE_TEXT = {
  live: "live",
  connecting: "connecting…",
  offline: "reconnecting…",
  unauthorized: "token needed",
};

function startLive() {
  if (stopLive) stopLive();
  stopLive = openLiveStream(
    (message) => { if (current) current.onLive(message); },
    (state) => {
      liveBadge.textContent = LIVE_TEXT[state] || state;
      liveBadge.dataset.state = state;
    },
  );
}

// -- token dialog: shown when the API answers 401 --------------------------------------
const tokenDialog = document.getElementById("token-dialog");
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token-input");
const tokenReason = document.getElementById("token-reason");

function askToken(reason) {
  tokenReason.textContent = reason || "";
  tokenInput.value = "";
  if (!tokenDialog.open) tokenDialog.showModal();
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : "save";
  if (action === "forget") setToken("");
  else if (action === "save" && tokenInput.value.trim()) setToken(tokenInput.value.trim());
  tokenInput.value = "";
  tokenDialog.close();
  updateTokenButton();
  if (action !== "cancel") {
    startLive();
    route();
  }
});

function updateTokenButton() {
  tokenButton.textContent = getToken() ? "Token: set" : "Token";
}

tokenButton.addEventListener("click", () => askToken("Used for commands (and reads, when the gateway protects them). Kept in this tab only."));
onAuthRequired((reason) => askToken(`The gateway asks for a bearer token: ${reason}.`));
window.addEventListener("hashchange", route);
document.getElementById("noscript-note")?.remove();
updateTokenButton();
startLive();
route();
// A marker for tests and for people: the modules loaded and the first view mounted.
document.body.dataset.ready = "true";
document.body.append(h("span", { hidden: true, id: "app-loaded" }));
