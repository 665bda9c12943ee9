// The console's only script (served from /console/static: the CSP allows no inline script).
// A button with data-copy="ID" copies the value of the field ID to the clipboard.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const id = button.getAttribute("data-copy");
  const field = document.getElementById(id);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
  } catch (error) {
    // No clipboard (plain http on another machine): select it for Ctrl+C.
    field.select();
    document.execCommand("copy");
  }
  const note = document.querySelector(`[data-copied="${id}"]`);
  if (note) note.hidden = false;
});
