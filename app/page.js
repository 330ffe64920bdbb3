// The page's own script, in HEAD (app/page.py fills READY, UNPREDICTED, SLOTS and WITHOUT_INPUTS in).
// Error messages belong to the view that raised them: switching tabs closes any that are open. A dropdown's
// list is hidden once Tab has left the dropdown (gradio's stayed open over the next line). A screen reader
// hears when a view is ready (READY_MESSAGES). The window's width goes to the server in a cookie
// (`app.events._is_phone`).
document.addEventListener("click", (event) => {
  if (!event.target.closest || !event.target.closest('[role="tab"]')) return;
  document.querySelectorAll(".toast-close").forEach((button) => button.click());
}, true);
const dropdownWrap = (event) => event.target.matches && event.target.matches('input[role="combobox"]')
  ? event.target.closest(".wrap") : null;
document.addEventListener("keydown", (event) => {
  const wrap = dropdownWrap(event);
  if (wrap) wrap.classList.toggle("left-by-tab", event.key === "Tab");
}, true);
for (const type of ["focusin", "mousedown"]) {
  document.addEventListener(type, (event) => dropdownWrap(event)?.classList.remove("left-by-tab"), true);
}
// Keyboard users get the WAI-ARIA tabs and radio group keys: gradio's tabs took Tab and Enter only, and each
// of a radio's inputs had a name of its own ("radio-1", "radio-2"), so arrow keys did nothing and every option
// was a Tab stop. Arrows (and Home, End) move between tabs and open the one reached, and only a row's open tab
// is a Tab stop (a roving tabindex: Tab goes on into its panel); a radio's inputs get one name again each time
// gradio renames them, and the browser moves the choice with the arrows.
document.addEventListener("keydown", (event) => {
  const tab = event.target.closest && event.target.closest('[role="tab"]');
  const list = tab && tab.closest('[role="tablist"]');
  if (!list || event.altKey || event.ctrlKey || event.metaKey) return;
  const tabs = [...list.querySelectorAll('[role="tab"]')].filter((t) => !t.disabled && t.offsetParent !== null);
  const at = tabs.indexOf(tab);
  const to = {ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1}[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  const next = tabs[(to + tabs.length) % tabs.length];
  next.focus();
  next.click();
});
let radioGroups = 0;
const groupRadios = () => document.querySelectorAll("fieldset").forEach((set) => {
  // its own radios only: a group nested in another keeps its name (two renaming one radio would never settle)
  const radios = [...set.querySelectorAll('input[type="radio"]')].filter((radio) => radio.closest("fieldset") === set);
  if (radios.length < 2) return;
  set.dataset.mangoRadios = set.dataset.mangoRadios || `mango-radio-${++radioGroups}`;
  radios.forEach((radio) => { if (radio.name !== set.dataset.mangoRadios) radio.name = set.dataset.mangoRadios; });
});
const rovingTabs = () => document.querySelectorAll('[role="tablist"]').forEach((list) => {
  const tabs = [...list.querySelectorAll('[role="tab"]')].filter((tab) => tab.closest('[role="tablist"]') === list);
  if (!tabs.some((tab) => tab.getAttribute("aria-selected") === "true")) return;  // none open: all stay stops
  tabs.forEach((tab) => {
    const stop = tab.getAttribute("aria-selected") === "true" ? "0" : "-1";
    if (tab.getAttribute("tabindex") !== stop) tab.setAttribute("tabindex", stop);
  });
});
new MutationObserver(() => { groupRadios(); rovingTabs(); }).observe(document.documentElement,
  {subtree: true, attributes: true, attributeFilter: ["name", "aria-selected"]});
const tellWidth = () => { document.cookie = `mango_width=${Math.round(window.innerWidth)}; path=/; SameSite=Lax`; };
tellWidth();
window.addEventListener("resize", tellWidth);  // a zoom changes the width in CSS px too
// A chart is read as the words its figure carries (layout.meta.alt, app/plots.py), its SVG hidden: that
// came as tick labels and values in drawing order. A read-only text output is readonly, not disabled: a
// disabled box is skipped by Tab and announced "unavailable". Plotly's Zoom and Pan set what a mouse drag
// does: no use to a keyboard, they leave the Tab order.
const describeChart = (plot) => {
  const alt = plot.layout && plot.layout.meta && plot.layout.meta.alt;
  if (!alt) return;
  plot.querySelectorAll("svg.main-svg").forEach((svg) => svg.setAttribute("aria-hidden", "true"));
  let words = plot.querySelector(":scope > .mango-chart-words");
  if (!words) {
    words = document.createElement("p");
    words.className = "mango-chart-words";
    plot.prepend(words);
  }
  if (words.textContent !== alt) words.textContent = alt;
};
let tidying = false;
new MutationObserver(() => {
  if (tidying) return;
  tidying = true;
  requestAnimationFrame(() => {
    tidying = false;
    document.querySelectorAll('.modebar-btn[data-title="Zoom"], .modebar-btn[data-title="Pan"]')
      .forEach((button) => button.setAttribute("tabindex", "-1"));
    groupRadios();
    rovingTabs();
    // gradio's own markup that axe-core flags: an aria-label on a plain div (an empty view's icon), upload
    // areas named apart from the words they show (a speech user says the words), footer icons whose alt
    // repeats their link's text (read twice)
    document.querySelectorAll("div.empty[aria-label]:not([role])").forEach((icon) => icon.setAttribute("role", "img"));
    document.querySelectorAll("button.upload-container[aria-label]").forEach((area) => area.removeAttribute("aria-label"));
    document.querySelectorAll("footer img[alt]:not([alt=''])").forEach((icon) => icon.setAttribute("alt", ""));
    document.querySelectorAll(".js-plotly-plot").forEach((plot) => {
      describeChart(plot);
      if (plot.on && !plot.dataset.mangoDescribed) {  // a new figure can change no node (same bars, new values)
        plot.dataset.mangoDescribed = "1";
        plot.on("plotly_afterplot", () => describeChart(plot));
      }
    });
    document.querySelectorAll(".mango-readout textarea[disabled]").forEach((box) => {
      box.removeAttribute("disabled");
      box.setAttribute("readonly", "");
    });
  });
}).observe(document.documentElement, {subtree: true, childList: true});
const READY = __READY__, UNPREDICTED = __UNPREDICTED__, SLOTS = __SLOTS__, WITHOUT_INPUTS = __WITHOUT_INPUTS__;
const filled = (id) => {  // an image slot shows its picture; the plot is a text box
  const slot = document.getElementById(id);
  const text = slot && slot.querySelector("textarea");
  return !slot || (text ? text.value.trim() !== "" : slot.querySelector("img") !== null);
};
const statusLine = () => {  // made empty at load: a live region inserted with its text is often not read
  let status = document.getElementById("mango-status");
  if (!status) {
    status = document.createElement("div");
    for (const [name, value] of [["id", "mango-status"], ["role", "status"], ["aria-live", "polite"]]) {
      status.setAttribute(name, value);
    }
    document.body.appendChild(status);
  }
  return status;
};
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", statusLine); else statusLine();
let lastSaid = ["", 0];
const announce = (text) => {
  if (text === lastSaid[0] && Date.now() - lastSaid[1] < 2000) return;  // one view's events in a row: said once
  lastSaid = [text, Date.now()];
  const status = statusLine();
  status.textContent = "";
  setTimeout(() => { status.textContent = text; }, 100);  // the same message twice is still read
};
new MutationObserver((mutations) => {
  for (const m of mutations) {
    const tracker = m.target;
    if (!tracker.dataset || tracker.dataset.testid !== "status-tracker") continue;
    const wasBusy = !(m.oldValue || "").split(" ").includes("hide");
    if (!wasBusy || !tracker.classList.contains("hide")) continue;  // done: its progress just went away
    // unless an event of hidden progress took the view over (an upload's clear): its own request still waits
    if (tracker.classList.contains("hidden")) continue;
    const block = tracker.closest("[id]");
    const entry = block && READY.find(([suffix]) => block.id.endsWith(suffix));
    if (entry) setTimeout(() => {  // what ended with nothing ready (READY_MESSAGES' comment) says so, or nothing
      const panel = block.closest("[role=tabpanel]") || document;
      const refused = [...panel.querySelectorAll(".validation-error")].map((e) => e.textContent.trim()).filter(Boolean);
      if (refused.length) return announce(refused.join(" "));
      if (WITHOUT_INPUTS.includes(entry[0]) && block.querySelector("img")) return announce(entry[1]);
      const prefix = block.id.split("-")[0];
      const notice = (document.querySelector(`#${prefix}-notices [data-testid=markdown]`)?.textContent || "").trim();
      if (notice.includes(UNPREDICTED)) return announce(notice);
      if ((SLOTS[prefix] || []).every(filled)) announce(entry[1]);
    }, 200);
  }
}).observe(document.documentElement, {subtree: true, attributes: true, attributeFilter: ["class"], attributeOldValue: true});
