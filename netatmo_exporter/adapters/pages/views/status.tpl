% rebase('base.tpl', title=title, same_origin_referrer=True, refresh_seconds=refresh_seconds)
% if done:
<p class="card ok" id="done">{{done}}</p>
% end
<section class="card {{'ok' if state_word == 'authorized' else 'problem'}}" id="authorization">
<h1 id="auth-state" data-state="{{state_word}}">{{headline}}</h1>
% if host_warning:
<p class="warning-text" id="host-mismatch">You opened this page at <code>{{host_warning}}</code>, but the external URL is
<code>{{external_url}}</code>: after authorizing, Netatmo sends your browser there.</p>
% end
<dl>
% if token.expires_at is not None:
<dt>Access token expires</dt><dd id="expiry">{{expiry_local}} ({{expiry_relative}}); renewed automatically</dd>
% elif token.has_refresh_token:
<dt>Access token</dt><dd id="expiry">renewed at the next refresh</dd>
% end
<dt>Last data refresh</dt>
% if refresh.attempted_at is None:
<dd id="last-refresh">none yet</dd>
% elif refresh.ok:
<dd id="last-refresh">{{refresh_time}} ({{refresh_relative}}): ok</dd>
% else:
<dd id="last-refresh">{{refresh_time}} ({{refresh_relative}}): failed</dd>
% end
<dt>Data calls</dt><dd id="refresh-mode" data-mode="{{schedule.mode}}">{{schedule.explanation}}</dd>
% if schedule.next_call:
<dt>Next data call</dt><dd id="next-call">{{schedule.next_call}}</dd>
% end
% for line in budget_waits:
<dt>Call budget</dt><dd class="budget-wait">{{line}}</dd>
% end
<dt>Token file</dt><dd><code>{{token.token_file}}</code></dd>
</dl>
% for item in advice:
<div class="advice">
<p class="problem-text">{{item.problem}}</p>
<p class="fix"><strong>What to do:</strong> {{item.fix}}</p>
</div>
% end
<p><a class="button" id="authorize" href="/auth/authorize">{{'Authorize again' if state_word == 'authorized' else 'Authorize with Netatmo'}}</a></p>
% if not basic_auth:
<p class="note" id="open-to-lan">No password protects these pages: anyone on your network can
open them and authorize the exporter again with another Netatmo account. To ask for a
password, add a user with <code>netatmo-exporter web-user --web.config.file FILE NAME</code> and
start the exporter with <code>--web.config.file FILE</code>.</p>
% end
</section>

<section class="card" id="setup">
<h2>Setting up your Netatmo app</h2>
<p>In the Netatmo developer console, give your app this redirect URI:</p>
<p><input id="redirect-uri" class="copy" type="text" readonly value="{{redirect_uri}}" aria-label="Redirect URI"></p>
<p class="note">Scopes asked for: <code>{{scopes}}</code>. The redirect URI is the external URL
(<code>--external-url</code>) plus <code>/auth/callback</code>.</p>
<p class="note" id="host-names">These pages answer at this machine's IP addresses and at
% for i, name in enumerate(host_names):
<code>{{name}}</code>{{', ' if i < len(host_names) - 1 else ''}}
% end
(other names: <code>--web.allowed-hosts</code>); <code>/metrics</code> at any name.</p>
<details id="paste"{{!' open' if state_word != 'authorized' else ''}}>
<summary>Or paste a refresh token</summary>
<p class="note">From the token generator of your app in the developer console (with the scopes above).
It is checked once with Netatmo before it replaces the current authorization.</p>
<form method="post" action="/auth/settoken" autocomplete="off">
<input type="hidden" name="form_token" value="{{form_token}}">
<label for="refresh-token">Refresh token</label>
<input id="refresh-token" name="refresh_token" type="password" maxlength="1024" required spellcheck="false">
<button type="submit" id="settoken">Use this refresh token</button>
</form>
</details>
</section>

<section class="card" id="stations">
<h2>Stations and modules</h2>
% if not rows:
<p>No data yet.</p>
% else:
<p class="note">Fetched {{fetched}}.{{(' Skipped (scope not granted): ' + skipped + '.') if skipped else ''}}</p>
<div class="table-wrap"><table>
<thead><tr><th>Station</th><th>Module</th><th>Readings</th><th>Battery</th><th>Signal</th><th>Data</th></tr></thead>
<tbody>
% for row in rows:
<tr class="{{row.health}}"><td class="station">{{row.station}}</td><td class="module">{{row.name}}<br><span class="note">{{row.kind}}</span></td>
<td data-label="Readings">{{row.readings}}</td><td data-label="Battery">{{row.battery}}</td><td data-label="Signal">{{row.signal}}</td><td class="age" data-label="Data">{{row.age}}</td></tr>
% end
</tbody></table></div>
% end
% if schedule.rows:
<h3>Uploads</h3>
<div class="table-wrap"><table id="cadences">
<thead><tr><th>Station</th><th>Uploads</th><th>Last upload</th><th>Next call</th></tr></thead>
<tbody>
% for row in schedule.rows:
<tr class="cadence {{row.state}}"><td class="station">{{row.station}}</td><td data-label="Uploads">{{row.period or 'not learned yet'}}</td>
<td data-label="Last upload">{{row.last_upload}}</td><td data-label="Next call">{{row.next_call}}</td></tr>
% end
</tbody></table></div>
% end
</section>
% include('rooms.tpl')
% include('history.tpl')
% if debug_handlers:
<p class="note">Debug: <a href="/debug/data">/debug/data</a> · <a href="/debug/token">/debug/token</a></p>
% end
