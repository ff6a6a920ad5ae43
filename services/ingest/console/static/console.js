// The console's only script: live numbers and the per-minute chart, confirmations, select-all.
"use strict";

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

document.querySelectorAll(".select-all").forEach((box) => {
  box.addEventListener("change", () => {
    box.closest("form").querySelectorAll("input[name=ballot_id]").forEach((b) => { b.checked = box.checked; });
  });
});

const live = document.getElementById("live");
if (live) {
  const chart = document.getElementById("chart");
  const setText = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
  const fillList = (id, entries, attr) => {
    const el = document.getElementById(id);
    const labels = JSON.parse(el.dataset.labels || "{}");
    el.replaceChildren();
    for (const [key, value] of entries) {
      const dt = document.createElement("dt"); dt.textContent = labels[key] || key;
      const dd = document.createElement("dd"); dd.textContent = value; dd.dataset[attr] = key;
      el.append(dt, dd);
    }
  };
  // one slot per minute of the last hour, the newest at the right
  const SLOTS = 60;
  const draw = (minutes) => {
    chart.replaceChildren();
    const most = Math.max(1, ...minutes.map((m) => m.ballots));
    const width = 600 / SLOTS;
    const now = Date.now();
    minutes.forEach((m) => {
      const slot = SLOTS - 1 - Math.floor((now - Date.parse(m.minute)) / 60000);
      if (slot < 0) return;
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      const height = (m.ballots / most) * 150;
      rect.setAttribute("x", String(slot * width + 1));
      rect.setAttribute("y", String(160 - height));
      rect.setAttribute("width", String(Math.max(width - 2, 1)));
      rect.setAttribute("height", String(height));
      rect.dataset.ballots = String(m.ballots);
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${m.minute.slice(11, 16)} · ${m.ballots}`;
      rect.append(title);
      chart.append(rect);
    });
  };
  const refresh = async () => {
    try {
      const response = await fetch(live.dataset.live, { credentials: "same-origin" });
      if (response.status === 401) { window.location.assign("/admin/sign-in"); return; }
      const data = await response.json();
      setText("counted", data.counted);
      setText("rejected", data.rejected);
      setText("held", data.held);
      const delay = document.getElementById("delay");
      delay.textContent = data.delay.p95_seconds === null ? "—" : `${data.delay.p95_seconds}${delay.dataset.suffix}`;
      const age = document.getElementById("snapshot-age");
      age.textContent = data.snapshot ? `#${data.snapshot.seq} · ${data.snapshot.age_seconds}${age.dataset.suffix}` : age.dataset.none;
      fillList("by-channel", Object.entries(data.by_channel), "channel");
      fillList("by-reason", Object.entries(data.rejected_by_reason), "reason");
      const top = document.getElementById("top");
      top.replaceChildren(...(data.snapshot ? data.snapshot.top : []).map((c) => {
        const li = document.createElement("li");
        li.dataset.candidate = c.id;
        li.append(`${c.title} `);
        const b = document.createElement("b"); b.textContent = c.votes; li.append(b);
        return li;
      }));
      draw(data.per_minute);
    } catch (error) {
      // a missed refresh is retried on the next tick
    }
  };
  refresh();
  window.setInterval(refresh, 2000);
}
