"""Training on several processes: the ranks' collectives (``distributed``) and ``--nproc``'s launcher (``launch``)."""
