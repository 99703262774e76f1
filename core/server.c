/*
 * server.c - the one process-wide context (server.h).
 */
#include "server.h"

struct server server;
