import sys

from frontservice_cli.main import main

sys.exit(main())
