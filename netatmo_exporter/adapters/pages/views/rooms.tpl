% if not energy_enabled:
<p class="note" id="energy-hint">{{energy_hint}}</p>
% else:
<section class="card" id="rooms">
<h2>Rooms and heating</h2>
% for problem in home_problems:
<div class="advice home-problem">
<p class="problem-text">{{'Home ' + problem.home + ': ' if problem.home else ''}}Netatmo gave no heating state.</p>
<p class="fix">{{problem.message}}. The other homes and the weather data are still exported; the exporter tries again at the next refresh.</p>
</div>
% end
% if not rooms:
<p>No rooms yet.</p>
% else:
<div class="table-wrap"><table>
<thead><tr><th>Home</th><th>Room</th><th>Temperature</th><th>Setpoint</th><th>Heating demand</th><th>Window</th><th>Batteries</th></tr></thead>
<tbody>
% for room in rooms:
<tr class="{{room.health}}"><td class="station">{{room.home}}</td><td class="room">{{room.room}}</td>
<td class="temperature" data-label="Temperature">{{room.temperature}}</td><td data-label="Setpoint">{{room.setpoint}}</td><td data-label="Heating demand">{{room.demand}}</td><td class="window" data-label="Window">{{room.window}}</td><td class="batteries" data-label="Batteries">{{room.batteries}}</td></tr>
% end
</tbody></table></div>
% end
</section>
% end
