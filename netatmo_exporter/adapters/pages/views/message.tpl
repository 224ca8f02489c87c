% rebase('base.tpl', title=title)
<section class="card {{kind}}" id="message">
<h1>{{title}}</h1>
<p>{{message}}</p>
% if fix:
<p class="fix"><strong>What to do:</strong> {{fix}}</p>
% end
% if link:
<p><a class="button" id="next" href="{{link[0]}}">{{link[1]}}</a></p>
% end
</section>
