/* service.c: the demo's listeners and privileges. */
#ifndef DEMO_SERVICE_H
#define DEMO_SERVICE_H

#include <tern.h>

#include "options.h"

/* Adopts systemd's sockets, adds --unix, turns TCP off when asked (or
 * when systemd passed sockets). Returns how many sockets systemd passed,
 * or -1 after reporting an error. */
int demo_listen_setup(tern_server *s, const demo_opts *o);
/* After binding: --user, then the root check. 0, or -1 after reporting. */
int demo_drop_privileges(const demo_opts *o);
/* The "listening on" lines (the first is what the tests wait for). */
void demo_print_listening(tern_server *s, const demo_opts *o, int https, int inherited);

#endif
