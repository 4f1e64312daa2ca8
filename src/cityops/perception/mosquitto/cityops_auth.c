/* cityops_auth.c - Mosquitto 2.0 plugin (plugin API v5) for ThingsBoard-style devices.
 *
 * - MOSQ_EVT_BASIC_AUTH: username = device access token, looked up in a text file
 *   "token device_id" per line (reloaded when its mtime/size/inode changes). On success
 *   the connection's username is replaced by "dev:<device_id>" (mosquitto_set_username),
 *   so the identity travels with the connection at no per-message lookup cost.
 *   One platform account (plugin_opt_platform_user / _password) gets full access.
 * - MOSQ_EVT_ACL_CHECK: a device may publish only on v1/devices/me/... and v1/gateway/...,
 *   subscribe to / receive only v1/devices/me/... and the gateway downlink topics.
 * - MOSQ_EVT_MESSAGE: from a device, "v1/devices/me/<rest>" -> "v1/devices/<id>/<ms>/<rest>",
 *   "v1/gateway/<rest>" -> "v1/gateway/<id>/<ms>/<rest>", <ms> being the broker's receipt time:
 *   values without a timestamp of their own are timed when the broker took them, not when a
 *   consumer got round to them (after an outage, or a redelivery). From the platform account,
 *   "down/<device_id>/<topic>" is re-published to that device's connection only
 *   (mosquitto_broker_publish_copy with its client id) as <topic>, e.g.
 *   down/<id>/v1/devices/me/rpc/request/7 -> v1/devices/me/rpc/request/7.
 * - MOSQ_EVT_TICK: once a second, reload the file if it changed and kick the
 *   connections whose token disappeared. MOSQ_EVT_DISCONNECT: forget the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <uthash.h>

#define DEV "dev:"
#define DEVLEN 4

struct cred { char *token, *device_id; UT_hash_handle hh; };
struct conn { char *device_id, *client_id, *token; const struct mosquitto *client; UT_hash_handle hh; };

static mosquitto_plugin_id_t *pid;
static char *cred_path, *plat_user, *plat_pass;
static struct cred *creds;              /* token -> device id */
static struct conn *conns;              /* device id -> latest connection */
static struct stat cred_st;
static time_t last_check;

static int valid_id(const char *s)
{
	if(!*s || !strcmp(s, "me") || !strcmp(s, "rpc") || !strcmp(s, "attributes")) return 0;
	for(; *s; s++){
		if(!((*s>='a'&&*s<='z')||(*s>='A'&&*s<='Z')||(*s>='0'&&*s<='9')||*s=='-'||*s=='_'||*s=='.')) return 0;
	}
	return 1;
}

static void free_conn(struct conn *c)
{
	HASH_DEL(conns, c);
	free(c->device_id); free(c->client_id); free(c->token); free(c);
}

static void load_creds(void)
{
	FILE *f = fopen(cred_path, "r");
	struct cred *fresh = NULL, *c, *tmp;
	struct conn *k, *ktmp;
	char line[1024], *tok, *dev, *save;
	char **kick = NULL;
	int n = 0, bad = 0, nkick = 0, i;
	struct timespec t0, t1;

	if(!f){
		mosquitto_log_printf(MOSQ_LOG_ERR, "cityops_auth: cannot open %s, keeping old credentials", cred_path);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while(fgets(line, sizeof(line), f)){
		tok = strtok_r(line, " \t\r\n", &save);
		if(!tok || tok[0] == '#') continue;
		dev = strtok_r(NULL, " \t\r\n", &save);
		if(!dev || !valid_id(dev) || strncmp(tok, DEV, DEVLEN) == 0){ bad++; continue; }
		HASH_FIND_STR(fresh, tok, c);
		if(c){ bad++; continue; }
		c = malloc(sizeof(*c));
		c->token = strdup(tok); c->device_id = strdup(dev);
		HASH_ADD_KEYPTR(hh, fresh, c->token, strlen(c->token), c);
		n++;
	}
	fclose(f);
	HASH_ITER(hh, creds, c, tmp){ HASH_DEL(creds, c); free(c->token); free(c->device_id); free(c); }
	creds = fresh;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "cityops_auth: loaded %d tokens (%d bad lines) in %.1f ms",
			n, bad, (t1.tv_sec-t0.tv_sec)*1e3 + (t1.tv_nsec-t0.tv_nsec)/1e6);

	/* revoked tokens: collect first, kick after (kicking fires DISCONNECT, which edits conns) */
	kick = calloc(HASH_COUNT(conns)+1, sizeof(char *));
	HASH_ITER(hh, conns, k, ktmp){
		HASH_FIND_STR(creds, k->token, c);
		if(!c || strcmp(c->device_id, k->device_id)){
			size_t len = DEVLEN + strlen(k->device_id) + 1;
			kick[nkick] = malloc(len);
			snprintf(kick[nkick++], len, DEV "%s", k->device_id);
		}
	}
	for(i=0; i<nkick; i++){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "cityops_auth: token revoked, kicking %s", kick[i]);
		mosquitto_kick_client_by_username(kick[i], false);
		free(kick[i]);
	}
	free(kick);
}

static void maybe_reload(int force)
{
	struct stat st;
	time_t now = time(NULL);
	if(!force && now == last_check) return;
	last_check = now;
	if(stat(cred_path, &st)) return;
	if(st.st_mtim.tv_sec != cred_st.st_mtim.tv_sec || st.st_mtim.tv_nsec != cred_st.st_mtim.tv_nsec
			|| st.st_size != cred_st.st_size || st.st_ino != cred_st.st_ino){
		cred_st = st;
		load_creds();
	}
}

static int is_device(const struct mosquitto *client, const char **id)
{
	const char *u = mosquitto_client_username(client);
	if(u && !strncmp(u, DEV, DEVLEN)){ *id = u + DEVLEN; return 1; }
	return 0;
}

static int cb_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct cred *c;
	struct conn *k;
	char uname[600];

	if(!ed->username) return MOSQ_ERR_AUTH;
	if(plat_user && !strcmp(ed->username, plat_user)){
		return (plat_pass && ed->password && !strcmp(ed->password, plat_pass)) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
	}
	maybe_reload(1);
	HASH_FIND_STR(creds, ed->username, c);
	if(!c) return MOSQ_ERR_AUTH;
	snprintf(uname, sizeof(uname), DEV "%s", c->device_id);
	if(mosquitto_set_username(ed->client, uname) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_AUTH;
	ed->username = NULL; /* freed by mosquitto_set_username */

	HASH_FIND_STR(conns, c->device_id, k);
	if(k) free_conn(k);
	k = calloc(1, sizeof(*k));
	k->device_id = strdup(c->device_id);
	k->client_id = strdup(mosquitto_client_id(ed->client));
	k->token = strdup(c->token);
	k->client = ed->client;
	HASH_ADD_KEYPTR(hh, conns, k->device_id, strlen(k->device_id), k);
	return MOSQ_ERR_SUCCESS;
}

static int gw_downlink(const char *t)
{
	return !strcmp(t, "v1/gateway/rpc") || !strcmp(t, "v1/gateway/attributes")
		|| !strcmp(t, "v1/gateway/attributes/response");
}

static int cb_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *id;

	if(!is_device(ed->client, &id)){
		return mosquitto_client_username(ed->client) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	if(!strncmp(ed->topic, "v1/devices/me/", 14)) return MOSQ_ERR_SUCCESS;
	if(ed->access == MOSQ_ACL_WRITE){
		return strncmp(ed->topic, "v1/gateway/", 11) ? MOSQ_ERR_ACL_DENIED : MOSQ_ERR_SUCCESS;
	}
	return gw_downlink(ed->topic) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

static int downlink(struct mosquitto_evt_message *ed)
{
	const char *p = ed->topic + 5, *slash = strchr(p, '/');
	char id[512];
	struct conn *k;

	if(!slash || slash - p >= (long)sizeof(id)) return MOSQ_ERR_SUCCESS;
	memcpy(id, p, slash - p); id[slash - p] = '\0';
	if(strncmp(slash+1, "v1/devices/me/", 14) && !gw_downlink(slash+1)) return MOSQ_ERR_SUCCESS;
	HASH_FIND_STR(conns, id, k);
	if(!k){
		mosquitto_log_printf(MOSQ_LOG_INFO, "cityops_auth: device %s not connected, dropped %s", id, ed->topic);
		return MOSQ_ERR_SUCCESS;
	}
	mosquitto_broker_publish_copy(k->client_id, slash+1, (int)ed->payloadlen, ed->payload, ed->qos, false, NULL);
	return MOSQ_ERR_SUCCESS;
}

static int cb_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	const char *id, *rest, *pfx;
	char *t;
	size_t n;
	struct timespec now;
	long long received_ms;

	if(!is_device(ed->client, &id)){
		return strncmp(ed->topic, "down/", 5) ? MOSQ_ERR_SUCCESS : downlink(ed);
	}
	if(!strncmp(ed->topic, "v1/devices/me/", 14)){ pfx = "v1/devices/"; rest = ed->topic + 14; }
	else if(!strncmp(ed->topic, "v1/gateway/", 11)){ pfx = "v1/gateway/"; rest = ed->topic + 11; }
	else return MOSQ_ERR_ACL_DENIED;
	clock_gettime(CLOCK_REALTIME, &now);
	received_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	n = strlen(pfx) + strlen(id) + 22 + strlen(rest) + 1;
	t = mosquitto_malloc(n);
	if(!t) return MOSQ_ERR_NOMEM;
	snprintf(t, n, "%s%s/%lld/%s", pfx, id, received_ms, rest);
	mosquitto_free(ed->topic);
	ed->topic = t;
	ed->retain = false;  /* devices don't get to leave retained messages behind */
	return MOSQ_ERR_SUCCESS;
}

static int cb_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	const char *id;
	struct conn *k;
	if(is_device(ed->client, &id)){
		HASH_FIND_STR(conns, id, k);
		if(k && k->client == ed->client) free_conn(k);
	}
	return MOSQ_ERR_SUCCESS;
}

static int cb_tick(int event, void *event_data, void *userdata)
{
	maybe_reload(0);
	return MOSQ_ERR_SUCCESS;
}

static int cb_reload(int event, void *event_data, void *userdata)
{
	memset(&cred_st, 0, sizeof(cred_st));
	maybe_reload(1);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i=0; i<supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	pid = identifier;
	for(int i=0; i<opt_count; i++){
		if(!strcmp(opts[i].key, "credentials_file")) cred_path = strdup(opts[i].value);
		else if(!strcmp(opts[i].key, "platform_user")) plat_user = strdup(opts[i].value);
		else if(!strcmp(opts[i].key, "platform_password")) plat_pass = strdup(opts[i].value);
	}
	if(!cred_path){
		mosquitto_log_printf(MOSQ_LOG_ERR, "cityops_auth: plugin_opt_credentials_file is required");
		return MOSQ_ERR_INVAL;
	}
	maybe_reload(1);
	mosquitto_callback_register(pid, MOSQ_EVT_BASIC_AUTH, cb_basic_auth, NULL, NULL);
	mosquitto_callback_register(pid, MOSQ_EVT_ACL_CHECK, cb_acl_check, NULL, NULL);
	mosquitto_callback_register(pid, MOSQ_EVT_MESSAGE, cb_message, NULL, NULL);
	mosquitto_callback_register(pid, MOSQ_EVT_DISCONNECT, cb_disconnect, NULL, NULL);
	mosquitto_callback_register(pid, MOSQ_EVT_TICK, cb_tick, NULL, NULL);
	mosquitto_callback_register(pid, MOSQ_EVT_RELOAD, cb_reload, NULL, NULL);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	struct cred *c, *ct;
	struct conn *k, *kt;
	mosquitto_callback_unregister(pid, MOSQ_EVT_BASIC_AUTH, cb_basic_auth, NULL);
	mosquitto_callback_unregister(pid, MOSQ_EVT_ACL_CHECK, cb_acl_check, NULL);
	mosquitto_callback_unregister(pid, MOSQ_EVT_MESSAGE, cb_message, NULL);
	mosquitto_callback_unregister(pid, MOSQ_EVT_DISCONNECT, cb_disconnect, NULL);
	mosquitto_callback_unregister(pid, MOSQ_EVT_TICK, cb_tick, NULL);
	mosquitto_callback_unregister(pid, MOSQ_EVT_RELOAD, cb_reload, NULL);
	HASH_ITER(hh, creds, c, ct){ HASH_DEL(creds, c); free(c->token); free(c->device_id); free(c); }
	HASH_ITER(hh, conns, k, kt){ free_conn(k); }
	free(cred_path); free(plat_user); free(plat_pass);
	return MOSQ_ERR_SUCCESS;
}
