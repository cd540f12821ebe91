/* Storelink's own few lines of JavaScript; every page works without them.
   Loaded as a file (the Content-Security-Policy allows no inline script):
   - the navigation's "Menu" button on narrow screens;
   - #live-status, an aria-live region that reads out what an HTMX swap changed (the swapped
     fragment names it in data-announce) and when a request failed;
   - .table-scroll boxes are in the Tab order only while they scroll;
   - forms marked data-busy (a connection test may take the store's whole timeout) show that
     Storelink is waiting, say so to screen readers, and are not sent twice. */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region || !text) return;
    region.textContent = "";
    // a fresh text node in a later frame makes screen readers speak a repeated message again
    window.requestAnimationFrame(function () { region.textContent = text; });
    window.clearTimeout(announce.timer);
    announce.timer = window.setTimeout(function () { region.textContent = ""; }, 8000);
  }

  function setUpMenu() {
    var header = document.querySelector("[data-site-header]");
    var button = document.getElementById("nav-toggle");
    if (!header || !button) return;
    header.classList.add("js-nav");
    function setOpen(open) {
      header.classList.toggle("nav-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && header.classList.contains("nav-open")) {
        setOpen(false);
        button.focus();
      }
    });
  }

  function setUpAnnouncements() {
    document.body.addEventListener("htmx:afterSettle", function () {
      var items = document.querySelectorAll("[data-announce]:not([data-announced])");
      for (var i = 0; i < items.length; i += 1) {
        items[i].setAttribute("data-announced", "");
        announce(items[i].getAttribute("data-announce"));
      }
    });
    function failed() { announce("Storelink could not save that change: reload the page and try again."); }
    document.body.addEventListener("htmx:responseError", failed);
    document.body.addEventListener("htmx:sendError", failed);
  }

  function setUpBusyForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-busy")) return;
      if (form.classList.contains("htmx-request")) {
        event.preventDefault(); // already waiting for the store: a second click would test twice
        return;
      }
      form.classList.add("htmx-request");
      form.setAttribute("aria-busy", "true");
      announce(form.getAttribute("data-busy"));
    });
    // back to a page kept in the browser's cache: it is not waiting any more
    window.addEventListener("pageshow", function () {
      var forms = document.querySelectorAll("form[data-busy].htmx-request");
      for (var i = 0; i < forms.length; i += 1) {
        forms[i].classList.remove("htmx-request");
        forms[i].removeAttribute("aria-busy");
      }
    });
  }

  // A box that scrolls sideways (a .table-scroll, or a table that scrolls inside itself on a
  // narrow screen) can be focused and scrolled with the keyboard; one that does not scroll at this
  // width needs no place in the Tab order.
  function setUpScrollBoxes() {
    function update() {
      var boxes = document.querySelectorAll(".table-scroll, table.data");
      for (var i = 0; i < boxes.length; i += 1) {
        var box = boxes[i];
        var inScrollBox = box.tagName === "TABLE" && box.parentElement && box.parentElement.classList.contains("table-scroll");
        if (inScrollBox) continue;
        if (box.scrollWidth > box.clientWidth + 1) {
          box.setAttribute("tabindex", "0");
        } else if (box.classList.contains("table-scroll") || box.hasAttribute("data-scroll-focus")) {
          box.removeAttribute("tabindex");
        }
        if (box.tagName === "TABLE" && box.getAttribute("tabindex") === "0") box.setAttribute("data-scroll-focus", "");
      }
    }
    update();
    window.addEventListener("resize", update);
    document.body.addEventListener("htmx:afterSettle", update);
  }

  setUpMenu();
  setUpScrollBoxes();
  setUpAnnouncements();
  setUpBusyForms();
})();
