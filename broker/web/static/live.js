// The day view refreshes itself: every data-live seconds it fetches its own URL, swaps
// in the new <main> (parsed with DOMParser: nothing in it runs) and marks what changed
// since the last look: rows and figures whose data-state differs, or that are new,
// get the class "changed" and are listed in #changes as text (never as HTML).
// Served from /static because the Content Security Policy allows no inline script.
"use strict";
(function () {
  const first = document.querySelector("main[data-live]");
  if (!first) return;
  const every = Math.max(2, Number(first.dataset.live) || 15) * 1000;

  function states(root) {
    const found = new Map();
    for (const el of root.querySelectorAll("[data-key]")) found.set(el.dataset.key, el.dataset.state);
    return found;
  }

  function changes(before, fresh) {
    const lines = [];
    for (const el of fresh.querySelectorAll("[data-key]")) {
      const old = before.get(el.dataset.key);
      if (old === el.dataset.state) continue;
      el.classList.add("changed");
      const was = old === undefined ? fresh.dataset.new : old;
      lines.push(`${el.dataset.label}: ${was} → ${el.dataset.state}`);
    }
    return lines;
  }

  function show(fresh, lines) {
    const box = fresh.querySelector("#changes");
    if (!box || lines.length === 0) return;
    const title = document.createElement("strong");
    title.textContent = fresh.dataset.changed.replace("{time}", new Date().toLocaleTimeString());
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    box.replaceChildren(title, list);
    box.hidden = false;
  }

  async function refresh() {
    try {
      const answer = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      const current = document.querySelector("main[data-live]");
      if (answer.ok && current) {
        const page = new DOMParser().parseFromString(await answer.text(), "text/html");
        const fresh = page.querySelector("main[data-live]");
        if (fresh) {  // else signed out (the login form came back): keep what is shown
          const lines = changes(states(current), fresh);
          current.replaceWith(document.adoptNode(fresh));
          show(fresh, lines);
        }
      }
    } catch (failure) {  // the broker restarting, or the network: try again next time
      console.debug("refresh failed", failure);
    } finally {
      setTimeout(refresh, every);
    }
  }
  setTimeout(refresh, every);
})();
