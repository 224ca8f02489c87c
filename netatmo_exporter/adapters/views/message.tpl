% rebase('base.tpl', title=title)
<section class="card {{kind}}" id="message">
<h1>{{title}}</h1>
<p>{{message}}</p>
% if fix:
<p class="fix"><strong>What to do:</strong> {{fix}}</p>
% end
<p><a class="button" href="/">Back to the status page</a></p>
</section>
