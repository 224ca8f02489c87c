"""The pages a browser sees: status, authorization, service answers, their templates and style."""
