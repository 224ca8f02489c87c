% rebase('base.tpl', title=title)
<section class="card warning" id="host-warning">
<h1>Check the address</h1>
<p>You opened the exporter at <code>{{request_host}}</code>, but its external URL is
<code>{{external_url}}</code>. After you accept on Netatmo's page, Netatmo sends your browser to
<code>{{redirect_uri}}</code>, not to the address you are using now.</p>
<p class="fix"><strong>To fix it:</strong> open the status page at
<a href="{{external_url}}/">{{external_url}}</a>, or start the exporter with
<code>--external-url</code> (<code>NETATMO_EXPORTER_EXTERNAL_URL</code>) set to the address your browser uses,
and register <code>&lt;that address&gt;/auth/callback</code> as the redirect URI of your Netatmo app.</p>
<p><a class="button secondary" id="continue" href="/auth/authorize?anyway=1">Continue anyway</a></p>
</section>
