from netatmo_exporter.entrypoints.cli import main

raise SystemExit(main())
