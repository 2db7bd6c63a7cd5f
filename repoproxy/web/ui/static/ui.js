// repoproxy UI: copy buttons and drag-and-drop upload with progress. Plain JavaScript, no
// build step; every page works without it (the upload form posts normally).
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // http:// pages have no async clipboard: the old way, from a hidden text area
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    copyText(text).then(function () {
      document.body.setAttribute("data-last-copied", text);
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });

  function uploadOne(form, file, list) {
    var item = document.createElement("li");
    var label = document.createElement("span");
    label.textContent = file.name + " ";
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    var status = document.createElement("span");
    item.appendChild(label); item.appendChild(bar); item.appendChild(status);
    list.appendChild(item);
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", form.querySelector("input[name=csrf_token]").value);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      });
      xhr.addEventListener("load", function () {
        var result = null;
        try { result = JSON.parse(xhr.responseText).results[0]; } catch (err) { result = null; }
        if (!result) {
          var message = "upload refused (HTTP " + xhr.status + ")";
          try { message = JSON.parse(xhr.responseText).message || message; } catch (err) { /* keep */ }
          result = { ok: false, error: message, reasons: [] };
        }
        bar.value = 100;
        if (result.ok) {
          status.className = "ok";
          status.textContent = " uploaded to " + result.subdir + " ";
          var link = document.createElement("a");
          link.href = result.url; link.textContent = "view package";
          status.appendChild(link);
        } else {
          status.className = "error";
          status.setAttribute("role", "alert");
          status.textContent = " refused: " + result.error +
            (result.reasons && result.reasons.length ? " " + result.reasons.join(" ") : "");
        }
        resolve(result.ok);
      });
      xhr.addEventListener("error", function () {
        status.className = "error"; status.textContent = " network error";
        resolve(false);
      });
      xhr.send(data);
    });
  }

  function uploadAll(form, files) {
    var list = document.getElementById("upload-list");
    var chain = Promise.resolve(true), allOk = true;
    Array.prototype.forEach.call(files, function (file) {
      chain = chain.then(function () {
        return uploadOne(form, file, list).then(function (ok) { allOk = allOk && ok; });
      });
    });
    chain.then(function () {
      form.setAttribute("data-upload-done", allOk ? "ok" : "error");
      if (allOk) { setTimeout(function () { window.location.reload(); }, 800); }
    });
  }

  function setUp() {
    var form = document.getElementById("upload-form");
    if (!form || !window.FormData) { return; }
    var zone = document.getElementById("dropzone");
    var input = document.getElementById("upload-files");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (input.files.length) { uploadAll(form, input.files); }
    });
    input.addEventListener("change", function () {
      if (input.files.length) { uploadAll(form, input.files); }
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault(); zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        uploadAll(form, event.dataTransfer.files);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else { setUp(); }
})();
