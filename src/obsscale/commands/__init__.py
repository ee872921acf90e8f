"""The `obsscale` command's subcommands (see `obsscale.cli`): each module adds one parser."""
