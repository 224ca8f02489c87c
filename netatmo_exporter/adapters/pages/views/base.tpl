<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
% if get('refresh_seconds', 0):
<meta http-equiv="refresh" content="{{refresh_seconds}}">
% end
% if get('same_origin_referrer', False):
<meta name="referrer" content="same-origin">
% end
<title>{{title}} · netatmo-exporter</title>
<link rel="stylesheet" href="/static/style.css">
</head><body>
<header><a class="brand" href="/">netatmo-exporter</a></header>
<main>
{{!base}}
</main>
<footer><a href="/">Status</a> · <a href="/metrics">/metrics</a> · <a href="/version">/version</a> · version {{version}}</footer>
</body></html>
