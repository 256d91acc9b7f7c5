// Live refresh of sections marked data-refresh="<seconds>": refetch the page and swap
// that section in place. Progressive: without JavaScript the page is simply static.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh]").forEach(function (section, index) {
    var seconds = parseInt(section.getAttribute("data-refresh"), 10) || 15;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelectorAll("[data-refresh]")[index];
          if (fresh) { section.replaceWith(fresh); section = fresh; }
        })
        .catch(function () { /* keep the last view; the next tick tries again */ });
    }, seconds * 1000);
  });
})();
