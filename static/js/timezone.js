/* Fills hidden inputs marked data-browser-time-zone with this browser's IANA time zone (e.g.
   "Europe/Berlin"), so a new account starts in the seller's own zone. Without JavaScript, or in a
   browser that does not say, the input stays empty and the account starts in UTC. Loaded as a file:
   the Content-Security-Policy allows no inline script. */
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  if (!zone) return;
  document.querySelectorAll("input[data-browser-time-zone]").forEach(function (input) {
    if (!input.value) input.value = zone;
  });
})();
