"""On-device demos of the exported deblurrer: a web page (LiteRT.js) and an
Android app (LiteRT), both driven by the export's JSON contract."""
