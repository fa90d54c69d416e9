from lintml.cli import main

raise SystemExit(main())
