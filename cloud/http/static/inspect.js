// Camera scan of a checkpoint's QR code where the browser has the Barcode Detection API (the
// form works without it: the code printed under the symbol is typed instead).
(function () {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var btn = document.getElementById("scan-camera"), video = document.getElementById("scan-video");
  if (!btn) return;
  btn.hidden = false;
  btn.addEventListener("click", async function () {
    var stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
    video.srcObject = stream; video.hidden = false; await video.play();
    var detector = new BarcodeDetector({formats: ["qr_code"]});
    var timer = setInterval(async function () {
      var codes = await detector.detect(video);
      if (codes.length) {
        clearInterval(timer); stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true;
        document.getElementById("code").value = codes[0].rawValue;
        document.getElementById("scan-method").value = "qr";
      }
    }, 300);
  });
})();
