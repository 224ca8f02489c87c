% if history_enabled:
<section class="card" id="history">
<h2>History written to Prometheus</h2>
<p class="note">Every reading Netatmo stored goes to <code>{{history_receiver}}</code> at its own
time, at most every {{history_interval}}: {{history_written}} readings written{{(', last ' + history_last_write) if history_last_write else ''}}{{('; next look ' + history_next) if history_next else ''}}.</p>
% if history_error:
<div class="advice" id="history-error">
<p class="problem-text">Last problem ({{history_error_at}}):</p>
<p class="fix">{{history_error}}</p>
</div>
% end
% if not history_lines:
<p>No modules yet: the history follows the modules and rooms on this page once they are read.</p>
% else:
<div class="table-wrap"><table>
<thead><tr><th>Module or room</th><th>Written up to</th><th>Behind</th><th>Problem</th></tr></thead>
<tbody>
% for line in history_lines:
<tr class="history {{line.health}}"><td class="module">{{line.source}}</td><td data-label="Written up to">{{line.written}}</td>
<td data-label="Behind">{{line.behind}}</td><td data-label="Problem">{{line.error}}</td></tr>
% end
</tbody></table></div>
% end
</section>
% end
