// A signature drawn with a finger (or mouse) on a canvas, sent as a PNG data URL in the hidden
// "signature" field when the canvas's form is submitted: the maintainer's on the checklist page,
// the property staff's on the confirmation page (/ops/confirm/N).
(function () {
  var canvas = document.getElementById("signature-pad");
  if (!canvas) return;
  var ctx = canvas.getContext("2d"), drawing = false, drawn = false;
  ctx.lineWidth = 2; ctx.lineCap = "round"; ctx.strokeStyle = "#111";
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  function at(e) {
    var r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  }
  canvas.addEventListener("pointerdown", function (e) {
    drawing = true; var p = at(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) return; var p = at(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); drawn = true;
  });
  canvas.addEventListener("pointerup", function () { drawing = false; });
  document.getElementById("signature-clear").addEventListener("click", function () {
    ctx.fillRect(0, 0, canvas.width, canvas.height); drawn = false;
  });
  canvas.closest("form").addEventListener("submit", function () {
    document.getElementById("signature").value = drawn ? canvas.toDataURL("image/png") : "";
  });
})();
