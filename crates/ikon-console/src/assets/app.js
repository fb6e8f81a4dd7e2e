// The Ikon console's only script (served from the binary; the Content-Security-Policy
// allows no inline script). Pages work without it; it adds conveniences.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The region selector applies itself when changed (its Go button stays for keyboards
  // and browsers without script).
  for (const s of document.querySelectorAll("select[data-autosubmit]")) {
    s.addEventListener("change", () => s.form && s.form.submit());
  }
  // Pages showing work in progress refresh themselves while it runs.
  if (document.querySelector("[data-live]") || document.querySelector(".badge.busy")) {
    setTimeout(() => { if (!document.querySelector("form:focus-within")) location.reload(); }, 5000);
  }
});
