<?php
/**
 * Storelink store bridge for OpenCart 2.1 – 4.1.
 *
 * OpenCart's own API can add order history, but no version can list orders, return order lines or
 * change stock and prices. This one file, uploaded next to the store's index.php, reads the store's
 * config.php and answers Storelink's signed JSON requests straight from the store database.
 *
 * - Runs on its own (not through OpenCart's router), so maintenance mode and SEO URLs do not matter.
 * - Works on every schema family (2.1–2.3, 3.0.x, 4.0.x, 4.1.x), detected from the tables themselves,
 *   with any table prefix; PHP 7.0 or newer; mysqli or PDO.
 * - Authenticates each request against OpenCart's own API users (System > Users > API): the request
 *   names the user and is signed with HMAC-SHA256 keyed with that user's API key, which never
 *   travels. The user must be enabled and the caller's IP listed on the user's "IP addresses" tab.
 *   Timestamps older or newer than 5 minutes and reused nonces are refused.
 * - Tells a caller that has not proved it holds a key nothing: every failure before the signature is
 *   verified is the same 401 reply, and such a caller costs at most one database query (the API-user
 *   lookup, cached for a few seconds in a file only PHP reads).
 *
 * The wire protocol is described in PROTOCOL.md next to this file in the Storelink source.
 * Storelink is free software (AGPL-3.0-or-later).
 */

define('STORELINK_BRIDGE_NAME', 'Storelink bridge');
define('STORELINK_BRIDGE_VERSION', '1.4.0');
define('STORELINK_MAX_BODY_BYTES', 1048576);
define('STORELINK_CLOCK_WINDOW_SECONDS', 300);
define('STORELINK_NONCE_TTL_SECONDS', 900);
define('STORELINK_MAX_BATCH_ITEMS', 100);
define('STORELINK_MAX_ORDER_PAGE', 250);
define('STORELINK_MAX_PRODUCT_PAGE', 500);
define('STORELINK_MAX_COMMENT_CHARS', 20000);
define('STORELINK_MAX_QUANTITY', 99999999);
// A signature that matches no cached API key re-reads the API users at most this often.
define('STORELINK_KEY_RECHECK_SECONDS', 5);
// Cached API keys older than this are not trusted before the database has been asked again.
define('STORELINK_KEY_CACHE_MAX_AGE', 3600);
// First line of the key cache file, so a web request for the file itself prints nothing.
define('STORELINK_KEY_CACHE_GUARD', "<?php exit; ?>\n");

// Never print PHP warnings, paths or SQL to the caller: every reply is our own JSON.
@ini_set('display_errors', '0');
@ini_set('html_errors', '0');
@ini_set('log_errors', '1');
error_reporting(E_ALL);
ob_start();

$GLOBALS['storelink_replied'] = false;

/** An error the caller may see: HTTP status, stable code, seller-readable message, extra fields. */
class StorelinkBridgeError extends Exception
{
    public $httpStatus;
    public $errorCode;
    public $extra;

    public function __construct($httpStatus, $errorCode, $message, $extra = array())
    {
        parent::__construct($message);
        $this->httpStatus = $httpStatus;
        $this->errorCode = $errorCode;
        $this->extra = $extra;
    }
}

/**
 * The one answer to every request whose signature was not verified: a stranger cannot tell an
 * unknown user from a wrong key, a stale clock, a missing config.php or a database that is down.
 */
class StorelinkUnauthorized extends StorelinkBridgeError
{
    public function __construct()
    {
        parent::__construct(401, 'unauthorized', 'The request is not authorised.');
    }
}

/** A database failure; carries the server's error number so callers can react to 1062/1146. */
class StorelinkDbError extends Exception
{
    public $errno;

    public function __construct($message, $errno)
    {
        parent::__construct($message);
        $this->errno = (int) $errno;
    }
}

function storelink_reply($status, $payload)
{
    if ($GLOBALS['storelink_replied']) {
        return;
    }
    $GLOBALS['storelink_replied'] = true;
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
    if (defined('JSON_INVALID_UTF8_SUBSTITUTE')) {
        $flags |= JSON_INVALID_UTF8_SUBSTITUTE;
    } else {
        $flags |= JSON_PARTIAL_OUTPUT_ON_ERROR;
    }
    $body = json_encode($payload, $flags);
    if ($body === false) {
        $status = 500;
        $body = '{"ok":false,"error":{"code":"internal_error","message":"The bridge could not encode its reply."}}';
    }
    if (!headers_sent()) {
        http_response_code($status);
        header('Content-Type: application/json; charset=utf-8');
        header('Cache-Control: no-store');
        header('X-Content-Type-Options: nosniff');
        header('X-Storelink-Bridge: ' . STORELINK_BRIDGE_VERSION);
    }
    echo $body;
}

function storelink_error_reply(StorelinkBridgeError $error)
{
    $detail = array('code' => $error->errorCode, 'message' => $error->getMessage());
    foreach ($error->extra as $key => $value) {
        $detail[$key] = $value;
    }
    storelink_reply($error->httpStatus, array('ok' => false, 'error' => $detail));
}

function storelink_internal_error()
{
    storelink_reply(500, array('ok' => false, 'error' => array(
        'code' => 'internal_error',
        'message' => 'The bridge hit an unexpected error; the store error log has the details.',
    )));
}

function storelink_on_shutdown()
{
    $last = error_get_last();
    $fatal = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR;
    if (!$GLOBALS['storelink_replied'] && $last !== null && ($last['type'] & $fatal)) {
        storelink_internal_error();
    }
}

register_shutdown_function('storelink_on_shutdown');

// --------------------------------------------------------------------------------------------------
// Database access: prepared statements only, through PDO or mysqli (whichever the store has).
// --------------------------------------------------------------------------------------------------

class StorelinkDb
{
    private $pdo = null;
    private $mysqli = null;

    public function __construct($driver, $host, $user, $password, $database, $port)
    {
        $preferPdo = in_array(strtolower((string) $driver), array('pdo', 'mpdo'), true);
        $havePdo = class_exists('PDO') && in_array('mysql', PDO::getAvailableDrivers(), true);
        $haveMysqli = class_exists('mysqli');
        if ($havePdo && ($preferPdo || !$haveMysqli)) {
            $this->connectPdo($host, $user, $password, $database, $port);
        } elseif ($haveMysqli) {
            $this->connectMysqli($host, $user, $password, $database, $port);
        } else {
            throw new StorelinkDbError('no MySQL driver', 0);
        }
    }

    /**
     * What OpenCart's own drivers set: lenient about omitted columns, no zero dates in strict form.
     * Run only once the caller is authenticated, so a stranger costs no statement beyond the lookup.
     */
    public function prepareSession()
    {
        $this->execute("SET SESSION sql_mode = 'NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'");
    }

    private function connectPdo($host, $user, $password, $database, $port)
    {
        $dsn = 'mysql:host=' . $host . ';port=' . (int) $port . ';dbname=' . $database . ';charset=utf8mb4';
        try {
            $this->pdo = new PDO($dsn, $user, $password, array(
                PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
                PDO::ATTR_EMULATE_PREPARES => false,
                PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            ));
        } catch (PDOException $e) {
            throw new StorelinkDbError('connect failed', 2002);
        }
    }

    private function connectMysqli($host, $user, $password, $database, $port)
    {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        try {
            // The character set goes with the handshake: set_charset() would cost a query.
            $this->mysqli = mysqli_init();
            $this->mysqli->options(MYSQLI_SET_CHARSET_NAME, 'utf8mb4');
            $this->mysqli->real_connect($host, $user, $password, $database, (int) $port);
        } catch (mysqli_sql_exception $e) {
            throw new StorelinkDbError('connect failed', 2002);
        }
    }

    /** Rows of a SELECT as associative arrays. */
    public function rows($sql, $params = array())
    {
        return $this->run($sql, $params, true);
    }

    public function row($sql, $params = array())
    {
        $rows = $this->run($sql, $params, true);
        return $rows ? $rows[0] : null;
    }

    /** Runs a statement that returns no rows; gives the number of affected rows. */
    public function execute($sql, $params = array())
    {
        return $this->run($sql, $params, false);
    }

    public function lastInsertId()
    {
        return $this->pdo !== null ? (int) $this->pdo->lastInsertId() : (int) $this->mysqli->insert_id;
    }

    public function begin()
    {
        $this->execute('START TRANSACTION');
    }

    public function commit()
    {
        $this->execute('COMMIT');
    }

    public function rollback()
    {
        try {
            $this->execute('ROLLBACK');
        } catch (Exception $e) {
            // the original error matters more than a failed rollback
        }
    }

    private function run($sql, $params, $wantRows)
    {
        if ($this->pdo !== null) {
            return $this->runPdo($sql, $params, $wantRows);
        }
        return $this->runMysqli($sql, $params, $wantRows);
    }

    private function runPdo($sql, $params, $wantRows)
    {
        try {
            $statement = $this->pdo->prepare($sql);
            $position = 1;
            foreach ($params as $value) {
                $statement->bindValue($position++, $value, is_int($value) ? PDO::PARAM_INT : PDO::PARAM_STR);
            }
            $statement->execute();
            if ($wantRows) {
                return $statement->fetchAll(PDO::FETCH_ASSOC);
            }
            return $statement->rowCount();
        } catch (PDOException $e) {
            $info = isset($e->errorInfo) && is_array($e->errorInfo) ? $e->errorInfo : array();
            throw new StorelinkDbError('query failed', isset($info[1]) ? $info[1] : 0);
        }
    }

    private function runMysqli($sql, $params, $wantRows)
    {
        try {
            $statement = $this->mysqli->prepare($sql);
            if ($params) {
                $types = '';
                $values = array();
                foreach ($params as $value) {
                    $types .= is_int($value) ? 'i' : 's';
                    $values[] = is_int($value) ? $value : (string) $value;
                }
                $refs = array($types);
                foreach ($values as $index => $unused) {
                    $refs[] = &$values[$index];
                }
                call_user_func_array(array($statement, 'bind_param'), $refs);
            }
            $statement->execute();
            if (!$wantRows) {
                $affected = $statement->affected_rows;
                $statement->close();
                return $affected;
            }
            $rows = array();
            if (method_exists($statement, 'get_result')) {
                $result = $statement->get_result();
                while ($result && ($row = $result->fetch_assoc()) !== null) {
                    $rows[] = $row;
                }
            } else {
                // mysqli without mysqlnd: bind every column to a variable.
                $meta = $statement->result_metadata();
                $row = array();
                $bound = array();
                foreach ($meta->fetch_fields() as $field) {
                    $row[$field->name] = null;
                    $bound[] = &$row[$field->name];
                }
                call_user_func_array(array($statement, 'bind_result'), $bound);
                while ($statement->fetch()) {
                    $copy = array();
                    foreach ($row as $key => $value) {
                        $copy[$key] = $value;
                    }
                    $rows[] = $copy;
                }
            }
            $statement->close();
            return $rows;
        } catch (mysqli_sql_exception $e) {
            throw new StorelinkDbError('query failed', $e->getCode());
        }
    }
}

// --------------------------------------------------------------------------------------------------
// Small helpers
// --------------------------------------------------------------------------------------------------

function storelink_bad_input($message, $extra = array())
{
    return new StorelinkBridgeError(400, 'invalid_input', $message, $extra);
}

/** A decimal as a fixed-point string, e.g. "105.0000": money never travels as a float. */
function storelink_decimal($value, $places)
{
    if ($value === null || $value === '') {
        $value = 0;
    }
    $formatted = number_format((float) $value, $places, '.', '');
    if ((float) $formatted == 0.0) {
        $formatted = number_format(0, $places, '.', '');
    }
    return $formatted;
}

function storelink_text($value)
{
    return $value === null ? '' : (string) $value;
}

/** A JSON integer (null when absent and allowed); rejects strings, floats and booleans. $index null: top level. */
function storelink_json_int($item, $field, $index, $min, $max, $required)
{
    $where = $index === null ? '' : "Item $index: ";
    $extra = $index === null ? array('field' => $field) : array('index' => $index, 'field' => $field);
    if (!array_key_exists($field, $item) || $item[$field] === null) {
        if ($required) {
            throw storelink_bad_input($where . "'$field' is required.", $extra);
        }
        return null;
    }
    $value = $item[$field];
    if (!is_int($value) || $value < $min || $value > $max) {
        throw storelink_bad_input($where . "'$field' must be a whole number from $min to $max.", $extra);
    }
    return $value;
}

/** A query parameter that must be a whole number within bounds. */
function storelink_query_int($query, $name, $default, $min, $max)
{
    if (!array_key_exists($name, $query)) {
        return $default;
    }
    $value = $query[$name];
    if (!preg_match('/^[0-9]{1,10}$/', $value) || (int) $value < $min || (int) $value > $max) {
        throw storelink_bad_input("'$name' must be a whole number from $min to $max.", array('field' => $name));
    }
    return (int) $value;
}

/** Money given as a JSON number or a plain decimal string, as integer ten-thousandths. */
function storelink_money_units($value, $index)
{
    $text = null;
    if (is_int($value)) {
        $text = (string) $value;
    } elseif (is_float($value) && is_finite($value)) {
        $text = number_format($value, 4, '.', '');
    } elseif (is_string($value)) {
        $text = $value;
    }
    if ($text === null || !preg_match('/^([0-9]{1,11})(?:\.([0-9]{1,4}))?$/', $text, $match)) {
        throw storelink_bad_input(
            "Item $index: 'price' must be a number from 0 to 99999999999.9999.",
            array('index' => $index, 'field' => 'price')
        );
    }
    $fraction = isset($match[2]) ? $match[2] : '';
    return (int) $match[1] * 10000 + (int) str_pad($fraction, 4, '0');
}

function storelink_units_to_decimal($units)
{
    $sign = $units < 0 ? '-' : '';
    $units = abs($units);
    return $sign . intdiv($units, 10000) . '.' . str_pad((string) ($units % 10000), 4, '0', STR_PAD_LEFT);
}

function storelink_decimal_to_units($text)
{
    return storelink_money_units(storelink_decimal($text, 4), 0);
}

// --------------------------------------------------------------------------------------------------
// The store: configuration, schema family, settings
// --------------------------------------------------------------------------------------------------

class StorelinkStore
{
    public $db;
    public $prefix;
    public $family;
    public $timezone;
    public $timezoneSource;
    /** PHP's own zone (date.timezone), reported so the seller sees both clocks. */
    public $phpTimezone;
    /** Seconds the database session's clock is ahead of UTC (NOW() minus UTC_TIMESTAMP()). */
    public $databaseOffset = 0;
    public $databaseTimeZone = '';
    /** The zone the order dates in the tables were written in (see readDatabaseZone). */
    public $dataZone;
    /**
     * True when MySQL's zone is the host's own (`SYSTEM`): only MySQL knows its summer-time rules
     * (the abbreviation it reports, such as EST, is one fixed offset to PHP), so dates are converted
     * by MySQL itself, each at the offset in force on its own day.
     */
    private $systemZone = false;
    /** Seconds MySQL's zone is ahead of UTC on a day ('Y-m-d' => offset, null on a change-over day). */
    private $dayOffsets = array();
    public $settings = array();
    public $languageId = 1;
    private $columns = array();

    public function __construct(StorelinkDb $db, $prefix)
    {
        $this->db = $db;
        $this->prefix = $prefix;
        $this->family = $this->detectFamily();
        $this->settings = $this->loadSettings();
        $this->timezoneSource = 'php_default';
        $zone = ini_get('date.timezone');
        $zone = $zone ? $zone : 'UTC';
        if (!empty($this->settings['config_timezone'])) {
            $zone = $this->settings['config_timezone'];
            $this->timezoneSource = 'config_timezone';
        }
        try {
            $this->timezone = new DateTimeZone($zone);
        } catch (Exception $e) {
            $this->timezone = new DateTimeZone('UTC');
        }
        $php = ini_get('date.timezone');
        $this->phpTimezone = $php ? (string) $php : 'UTC';
        $this->dataZone = $this->readDatabaseZone();
        $this->languageId = $this->defaultLanguageId();
    }

    /**
     * The zone order dates were written in. OpenCart 3.0 and 4.x set every database session to PHP's
     * zone (`SET time_zone = date('P')` at startup), so their dates are in the store's zone. 2.1-2.3
     * never set it and write `NOW()`: their dates are in MySQL's own zone, which this connection
     * shares because the bridge does not set it either. That zone is taken from MySQL: a named zone
     * or fixed offset as MySQL states it, the server's system zone when PHP knows it by that name and
     * it agrees with MySQL's current offset, else the current offset itself.
     */
    private function readDatabaseZone()
    {
        $row = $this->db->row(
            'SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS offset_seconds, @@session.time_zone AS session_zone,'
            . ' @@system_time_zone AS system_zone'
        );
        $this->databaseOffset = $row ? (int) $row['offset_seconds'] : 0;
        $this->databaseTimeZone = $row ? (string) $row['session_zone'] : '';
        if ($this->family !== '2.x') {
            return $this->timezone;
        }
        // a host on UTC has no summer time to follow
        $this->systemZone = $row && $this->databaseTimeZone === 'SYSTEM' && strtoupper((string) $row['system_zone']) !== 'UTC';
        $candidates = array();
        if ($row && $this->databaseTimeZone !== 'SYSTEM') {
            $candidates[] = $this->databaseTimeZone;
        } elseif ($row) {
            $candidates[] = (string) $row['system_zone'];
        }
        foreach ($candidates as $name) {
            try {
                $zone = new DateTimeZone($name);
            } catch (Exception $e) {
                continue;
            }
            if ($zone->getOffset(new DateTime('now', $zone)) === $this->databaseOffset) {
                return $zone;
            }
        }
        $minutes = intdiv(abs($this->databaseOffset) + 30, 60);
        return new DateTimeZone(sprintf('%s%02d:%02d', $this->databaseOffset < 0 ? '-' : '+', intdiv($minutes, 60), $minutes % 60));
    }

    /** Whether the tables' dates are in a zone other than the one the bridge answers in. */
    public function datesNeedConverting()
    {
        return $this->systemZone || $this->dataZone->getName() !== $this->timezone->getName();
    }

    /** A date from the tables, in the store's zone (the zone every date in a reply is in). */
    public function toStore($text)
    {
        return $this->convert(storelink_text($text), $this->dataZone, $this->timezone, true);
    }

    /** A store-zone date from a request, in the zone the tables are written in. */
    public function toData($text)
    {
        return $this->convert($text, $this->timezone, $this->dataZone, false);
    }

    private function convert($text, $from, $to, $fromData)
    {
        if (!$this->datesNeedConverting() || !preg_match('/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$/', $text)
            || strpos($text, '0000') === 0) {
            return $text;
        }
        $date = DateTime::createFromFormat('!Y-m-d H:i:s', $text, $this->systemZone ? new DateTimeZone('UTC') : $from);
        if ($date === false) {
            return $text;
        }
        if ($this->systemZone && $fromData) {
            // MySQL's wall clock: its offset on that day (the exact moment on a change-over day)
            $offset = $this->systemOffsetOn(substr($text, 0, 10));
            $moment = $offset === null ? $this->systemMoment($text) : $date->getTimestamp() - $offset;
            $date = new DateTime('@' . $moment);
        } elseif ($this->systemZone) {
            $moment = DateTime::createFromFormat('!Y-m-d H:i:s', $text, $from)->getTimestamp();
            $row = $this->db->row('SELECT FROM_UNIXTIME(?) AS wall', array($moment));
            return $row ? storelink_text($row['wall']) : $text;
        }
        $date->setTimezone($to);
        return $date->format('Y-m-d H:i:s');
    }

    /** MySQL's offset to UTC all through one day, or null when it changes that day. */
    private function systemOffsetOn($day)
    {
        if (!array_key_exists($day, $this->dayOffsets)) {
            $row = $this->db->row(
                'SELECT UNIX_TIMESTAMP(?) AS first_second, UNIX_TIMESTAMP(?) AS last_second',
                array($day . ' 00:00:00', $day . ' 23:59:59')
            );
            $midnight = DateTime::createFromFormat('!Y-m-d', $day, new DateTimeZone('UTC'))->getTimestamp();
            $first = $row ? $midnight - (int) $row['first_second'] : $this->databaseOffset;
            $last = $row ? $midnight + 86399 - (int) $row['last_second'] : $this->databaseOffset;
            $this->dayOffsets[$day] = ($row && (int) $row['first_second'] > 0 && $first === $last) ? $first : null;
        }
        return $this->dayOffsets[$day];
    }

    /** The moment a MySQL wall-clock time stands for, as MySQL's own zone rules say. */
    private function systemMoment($text)
    {
        $row = $this->db->row('SELECT UNIX_TIMESTAMP(?) AS moment', array($text));
        if ($row && (int) $row['moment'] > 0) {
            return (int) $row['moment'];
        }
        return DateTime::createFromFormat('!Y-m-d H:i:s', $text, new DateTimeZone('UTC'))->getTimestamp() - $this->databaseOffset;
    }

    /** Now, as OpenCart writes it into the tables (2.x: MySQL's zone; 3.0+: the store's zone). */
    public function dataNow()
    {
        $now = new DateTime('now', $this->dataZone);
        return $now->format('Y-m-d H:i:s');
    }

    /** A table name with the store's prefix, quoted. */
    public function t($name)
    {
        return '`' . $this->prefix . $name . '`';
    }

    public function columns($table)
    {
        if (!isset($this->columns[$table])) {
            $rows = $this->db->rows(
                'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
                array($this->prefix . $table)
            );
            $names = array();
            foreach ($rows as $row) {
                $names[] = strtolower($row['name']);
            }
            $this->columns[$table] = $names;
        }
        return $this->columns[$table];
    }

    public function hasColumn($table, $column)
    {
        return in_array($column, $this->columns($table), true);
    }

    /** 2.x: api.name; 3.0: api.username; 4.0: product.master_id; 4.1: the product_code table. */
    private function detectFamily()
    {
        $api = $this->columns('api');
        if (!$api) {
            throw new StorelinkBridgeError(
                500,
                'store_schema_unknown',
                "The bridge could not find OpenCart's API users table; check DB_PREFIX in config.php."
            );
        }
        if ($this->columns('product_code')) {
            return '4.1';
        }
        if ($this->hasColumn('product', 'master_id')) {
            return '4.0';
        }
        return in_array('username', $api, true) ? '3.0' : '2.x';
    }

    public function apiNameColumn()
    {
        return $this->family === '2.x' ? 'name' : 'username';
    }

    private function loadSettings()
    {
        $keys = array(
            'config_name', 'config_currency', 'config_tax', 'config_timezone', 'config_language',
            'config_language_catalog', 'config_order_status_id', 'config_processing_status',
            'config_complete_status',
        );
        $marks = implode(',', array_fill(0, count($keys), '?'));
        $rows = $this->db->rows(
            'SELECT `key`, `value` FROM ' . $this->t('setting') . " WHERE store_id = 0 AND `key` IN ($marks)",
            $keys
        );
        $settings = array();
        foreach ($rows as $row) {
            $settings[$row['key']] = (string) $row['value'];
        }
        return $settings;
    }

    public function setting($key, $default = '')
    {
        return isset($this->settings[$key]) ? $this->settings[$key] : $default;
    }

    /** A status-list setting (stored as a JSON array, by very old versions PHP-serialized) as ids. */
    public function statusIds($key)
    {
        $value = $this->setting($key);
        $list = json_decode($value, true);
        if (!is_array($list)) {
            $list = @unserialize($value, array('allowed_classes' => false));
        }
        $ids = array();
        foreach (is_array($list) ? $list : array() as $item) {
            if (is_scalar($item) && preg_match('/^[0-9]{1,10}$/', (string) $item)) {
                $ids[] = (int) $item;
            }
        }
        $ids = array_values(array_unique($ids));
        sort($ids);
        return $ids;
    }

    private function defaultLanguageId()
    {
        $code = $this->setting('config_language_catalog', $this->setting('config_language'));
        $row = $this->db->row('SELECT language_id FROM ' . $this->t('language') . ' WHERE code = ?', array($code));
        if ($row === null) {
            $row = $this->db->row('SELECT MIN(language_id) AS language_id FROM ' . $this->t('language'));
        }
        return $row && $row['language_id'] !== null ? (int) $row['language_id'] : 1;
    }

    /** Now, as the store writes dates: naive local time in the store's timezone. */
    public function now()
    {
        $now = new DateTime('now', $this->timezone);
        return $now->format('Y-m-d H:i:s');
    }

    /** SQL for the SKU of the product whose id is the SQL expression $productId. */
    public function skuSql($productId)
    {
        if ($this->family === '4.1') {
            return '(SELECT pc.value FROM ' . $this->t('product_code') . ' pc WHERE pc.product_id = ' . $productId
                . " AND pc.code = 'SKU' ORDER BY pc.product_code_id LIMIT 1)";
        }
        return '(SELECT ps.sku FROM ' . $this->t('product') . ' ps WHERE ps.product_id = ' . $productId . ')';
    }
}

/** OpenCart's VERSION constant, read (never executed) from the store's index.php. */
function storelink_opencart_version()
{
    $index = __DIR__ . DIRECTORY_SEPARATOR . 'index.php';
    if (!is_readable($index)) {
        return null;
    }
    $head = @file_get_contents($index, false, null, 0, 8192);
    if ($head !== false && preg_match("/define\\(\\s*'VERSION'\\s*,\\s*'([0-9][0-9A-Za-z._-]{0,31})'\\s*\\)/", $head, $m)) {
        return $m[1];
    }
    return null;
}

function storelink_config_path()
{
    if (defined('STORELINK_BRIDGE_CONFIG')) {
        return (string) constant('STORELINK_BRIDGE_CONFIG');
    }
    $fromEnv = getenv('STORELINK_BRIDGE_CONFIG');
    if ($fromEnv !== false && $fromEnv !== '') {
        return $fromEnv;
    }
    return __DIR__ . DIRECTORY_SEPARATOR . 'config.php';
}

/**
 * The database settings from the store's config.php. Read before the caller is authenticated, so a
 * problem is logged for the seller's host and answered with the uniform refusal.
 */
function storelink_load_config()
{
    $path = storelink_config_path();
    if (!is_file($path) || !is_readable($path)) {
        error_log('storelink-bridge: cannot read config.php; upload storelink-bridge.php next to index.php and config.php');
        throw new StorelinkUnauthorized();
    }
    require_once $path;
    foreach (array('DB_HOSTNAME', 'DB_USERNAME', 'DB_DATABASE') as $name) {
        if (!defined($name)) {
            error_log('storelink-bridge: config.php does not define the database settings');
            throw new StorelinkUnauthorized();
        }
    }
    $prefix = defined('DB_PREFIX') ? (string) DB_PREFIX : '';
    if (!preg_match('/^[A-Za-z0-9_]{0,32}$/', $prefix)) {
        error_log('storelink-bridge: DB_PREFIX in config.php is not a plain table prefix');
        throw new StorelinkUnauthorized();
    }
    $host = (string) DB_HOSTNAME;
    $port = defined('DB_PORT') ? (int) DB_PORT : 3306;
    if (preg_match('/^(.+):([0-9]{1,5})$/', $host, $m)) {
        $host = $m[1];
        $port = (int) $m[2];
    }
    return array(
        'driver' => defined('DB_DRIVER') ? (string) DB_DRIVER : 'mysqli',
        'host' => $host,
        'port' => $port ? $port : 3306,
        'user' => (string) DB_USERNAME,
        'password' => defined('DB_PASSWORD') ? (string) DB_PASSWORD : '',
        'database' => (string) DB_DATABASE,
        'prefix' => $prefix,
    );
}

/** A connection with the config.php settings; StorelinkDbError when the database cannot be reached. */
function storelink_connect($config)
{
    return new StorelinkDb(
        $config['driver'],
        $config['host'],
        $config['user'],
        $config['password'],
        $config['database'],
        $config['port']
    );
}

/**
 * The API users' names and keys, kept for a short while in a file so that a stranger's request costs
 * no database query while the file is fresh, and at most one lookup per few seconds otherwise.
 *
 * The file sits in OpenCart's own cache folder (DIR_CACHE, writable on every working store) or else
 * the system temp folder, is readable by its owner only, starts with a PHP exit so a web request for
 * it prints nothing, and carries a name derived from the database password, so nobody who cannot
 * read config.php can guess, pre-create or replace it. Its keys are only a shortcut: a request they
 * verify is checked against the database again before anything is answered.
 */
class StorelinkKeyCache
{
    private $path;
    private $data;

    public function __construct($config)
    {
        $this->path = self::pathFor($config);
        $this->data = $this->read();
    }

    private static function pathFor($config)
    {
        $folders = array();
        if (defined('DIR_CACHE')) {
            $folders[] = (string) constant('DIR_CACHE');
        }
        $folders[] = sys_get_temp_dir();
        foreach ($folders as $folder) {
            if ($folder !== '' && @is_dir($folder) && @is_writable($folder)) {
                $id = hash('sha256', implode('|', array(
                    'storelink-bridge-keys', __DIR__, $config['database'], $config['prefix'], $config['user'],
                    $config['password'],
                )));
                return rtrim($folder, '/\\') . DIRECTORY_SEPARATOR . 'storelink-bridge-' . substr($id, 0, 32) . '.php';
            }
        }
        return null;
    }

    private function read()
    {
        $empty = array('checked' => 0, 'fetched' => 0, 'users' => array());
        if ($this->path === null || !@is_file($this->path)) {
            return $empty;
        }
        $text = @file_get_contents($this->path);
        if (!is_string($text) || strpos($text, STORELINK_KEY_CACHE_GUARD) !== 0) {
            return $empty;
        }
        $data = json_decode(substr($text, strlen(STORELINK_KEY_CACHE_GUARD)), true);
        if (!is_array($data) || !isset($data['checked'], $data['fetched'], $data['users']) || !is_array($data['users'])) {
            return $empty;
        }
        return $data;
    }

    /** Cached users as (api_id, name, key) rows; none when the cache is too old to trust. */
    public function users($now)
    {
        $age = $now - (int) $this->data['fetched'];
        return ($age >= 0 && $age <= STORELINK_KEY_CACHE_MAX_AGE) ? $this->data['users'] : array();
    }

    /** Whether the database may be asked again (never more often than every few seconds). */
    public function mayRecheck($now)
    {
        $age = $now - (int) $this->data['checked'];
        return $this->path === null || $age < 0 || $age >= STORELINK_KEY_RECHECK_SECONDS;
    }

    public function markChecked($now)
    {
        $this->data['checked'] = $now;
        $this->write();
    }

    /** Keeps the rows of `SELECT * FROM api` (2.x names users in `name`, 3.0+ in `username`). */
    public function store($rows, $now)
    {
        $users = array();
        foreach ($rows as $row) {
            $name = isset($row['username']) ? $row['username'] : (isset($row['name']) ? $row['name'] : '');
            $users[] = array((int) $row['api_id'], (string) $name, (string) $row['key']);
        }
        $this->data['users'] = $users;
        $this->data['fetched'] = $now;
        $this->write();
    }

    public function forget()
    {
        $this->data['users'] = array();
        $this->data['fetched'] = 0;
        $this->write();
    }

    private function write()
    {
        if ($this->path === null) {
            return;
        }
        $temp = @tempnam(dirname($this->path), 'slb');
        if ($temp === false || dirname($temp) !== dirname($this->path)) {
            if ($temp !== false) {
                @unlink($temp);
            }
            return;
        }
        @chmod($temp, 0600);
        if (@file_put_contents($temp, STORELINK_KEY_CACHE_GUARD . json_encode($this->data)) === false
            || !@rename($temp, $this->path)) {
            @unlink($temp);
        }
    }
}

// --------------------------------------------------------------------------------------------------
// The request: query parsing and authentication
// --------------------------------------------------------------------------------------------------

/** The query string as (name, value) pairs, decoded the way the client encoded them. */
function storelink_query_pairs($queryString)
{
    $pairs = array();
    foreach (explode('&', (string) $queryString) as $part) {
        if ($part === '') {
            continue;
        }
        $pieces = explode('=', $part, 2);
        $pairs[] = array(urldecode($pieces[0]), isset($pieces[1]) ? urldecode($pieces[1]) : '');
    }
    return $pairs;
}

function storelink_canonical_query($pairs)
{
    usort($pairs, 'storelink_compare_pairs');
    $encoded = array();
    foreach ($pairs as $pair) {
        $encoded[] = rawurlencode($pair[0]) . '=' . rawurlencode($pair[1]);
    }
    return implode('&', $encoded);
}

function storelink_compare_pairs($a, $b)
{
    $byName = strcmp($a[0], $b[0]);
    return $byName !== 0 ? $byName : strcmp($a[1], $b[1]);
}

function storelink_header($name)
{
    $key = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
    return isset($_SERVER[$key]) ? (string) $_SERVER[$key] : null;
}

/** The first (api_id, name, key) row named $user whose key verifies $signature, or null. */
function storelink_match_key($users, $user, $stringToSign, $signature)
{
    foreach ($users as $row) {
        if (!is_array($row) || count($row) !== 3 || strcasecmp((string) $row[1], $user) !== 0) {
            continue;
        }
        if (hash_equals(hash_hmac('sha256', $stringToSign, (string) $row[2]), $signature)) {
            return array('api_id' => (int) $row[0], 'key' => (string) $row[2]);
        }
    }
    return null;
}

/**
 * Checks the signature headers and returns the open database. Until the signature verifies, every
 * failure is the one uniform refusal (no user names, server time or database state for strangers)
 * and the only query is the API-user lookup, throttled by the key cache. After it, the caller has
 * proved it holds the key and gets the specific answers: clock skew, disabled user, IP not allowed.
 */
function storelink_authenticate($config, $method, $path, $query, $body, $auth)
{
    $user = $auth['user'];
    $timestamp = $auth['timestamp'];
    $nonce = $auth['nonce'];
    $signature = strtolower($auth['signature']);
    if ($user === '' || strlen($user) > 64 || !preg_match('//u', $user)
        || !preg_match('/^[0-9]{1,12}$/', $timestamp)
        || !preg_match('/^[A-Za-z0-9_-]{16,64}$/', $nonce)
        || !preg_match('/^[0-9a-f]{64}$/', $signature)) {
        throw new StorelinkUnauthorized();
    }
    $stringToSign = implode("\n", array(
        'STORELINK1', $method, $path, $query, $user, $timestamp, $nonce, hash('sha256', $body),
    ));
    $serverTime = time();
    $cache = new StorelinkKeyCache($config);
    $account = storelink_match_key($cache->users($serverTime), $user, $stringToSign, $signature);
    $db = null;
    if ($account === null) {
        if (!$cache->mayRecheck($serverTime)) {
            throw new StorelinkUnauthorized();
        }
        $cache->markChecked($serverTime);
        try {
            $db = storelink_connect($config);
            $rows = $db->rows('SELECT * FROM `' . $config['prefix'] . 'api` ORDER BY api_id');
        } catch (StorelinkDbError $e) {
            error_log('storelink-bridge: the API users could not be read (' . $e->errno . '); check the database settings in config.php');
            throw new StorelinkUnauthorized();
        }
        $cache->store($rows, $serverTime);
        $account = storelink_match_key($cache->users($serverTime), $user, $stringToSign, $signature);
        if ($account === null) {
            throw new StorelinkUnauthorized();
        }
    }

    $skew = (int) $timestamp - $serverTime;
    if (abs($skew) > STORELINK_CLOCK_WINDOW_SECONDS) {
        throw new StorelinkBridgeError(
            401,
            'clock_skew',
            'The request time differs from the store server clock by ' . $skew . ' seconds (at most '
            . STORELINK_CLOCK_WINDOW_SECONDS . ' allowed); check the clock of the store server.',
            array('skew_seconds' => $skew, 'server_time' => $serverTime)
        );
    }
    if ($db === null) {
        try {
            $db = storelink_connect($config);
        } catch (StorelinkDbError $e) {
            throw new StorelinkBridgeError(
                503,
                'store_db_unavailable',
                'The bridge could not connect to the store database with the settings in config.php.'
            );
        }
    }
    $db->prepareSession();
    $ip = isset($_SERVER['REMOTE_ADDR']) ? (string) $_SERVER['REMOTE_ADDR'] : '';
    $api = '`' . $config['prefix'] . 'api`';
    $current = $db->row(
        'SELECT a.`key`, a.status, (SELECT COUNT(*) FROM `' . $config['prefix'] . 'api_ip` i WHERE i.api_id = a.api_id AND i.ip = ?) AS allowed'
        . " FROM $api a WHERE a.api_id = ?",
        array($ip, $account['api_id'])
    );
    if ($current === null || !hash_equals((string) $current['key'], $account['key'])) {
        // The cached key was changed or removed in the admin since it was read.
        $cache->forget();
        throw new StorelinkUnauthorized();
    }
    if ((int) $current['status'] !== 1) {
        throw new StorelinkBridgeError(
            403,
            'user_disabled',
            'This API user is disabled; enable it under System > Users > API.'
        );
    }
    if ((int) $current['allowed'] === 0) {
        throw new StorelinkBridgeError(
            403,
            'ip_not_allowed',
            'The store does not accept requests from ' . $ip . ' for this API user; add that address on the '
            . "user's IP addresses tab (System > Users > API).",
            array('ip' => $ip)
        );
    }
    storelink_remember_nonce($db, $config['prefix'], $nonce, $account['api_id'], $serverTime);
    return $db;
}

function storelink_remember_nonce(StorelinkDb $db, $prefix, $nonce, $apiId, $now)
{
    $table = '`' . $prefix . 'storelink_nonce`';
    for ($attempt = 0; $attempt < 2; $attempt++) {
        try {
            $db->execute("DELETE FROM $table WHERE created < ?", array($now - STORELINK_NONCE_TTL_SECONDS));
            $db->execute("INSERT INTO $table (nonce, api_id, created) VALUES (?, ?, ?)", array($nonce, $apiId, $now));
            return;
        } catch (StorelinkDbError $e) {
            if ($e->errno === 1062) {
                throw new StorelinkBridgeError(
                    401,
                    'nonce_reused',
                    'This request was already received once (repeated nonce); a replayed request is refused.'
                );
            }
            if ($e->errno !== 1146 || $attempt > 0) {
                throw $e;
            }
            $db->execute(
                "CREATE TABLE IF NOT EXISTS $table (nonce varchar(64) NOT NULL, api_id int(11) NOT NULL, "
                . 'created int(11) NOT NULL, PRIMARY KEY (nonce), KEY created (created)) DEFAULT CHARSET=utf8'
            );
        }
    }
}

// --------------------------------------------------------------------------------------------------
// Reading orders
// --------------------------------------------------------------------------------------------------

function storelink_method_name($value, $legacyCode)
{
    $text = storelink_text($value);
    if ($text !== '' && $text[0] === '{') {
        $decoded = json_decode($text, true);
        if (is_array($decoded)) {
            return array(
                isset($decoded['name']) ? storelink_text($decoded['name']) : '',
                isset($decoded['code']) ? storelink_text($decoded['code']) : '',
            );
        }
    }
    return array($text, storelink_text($legacyCode));
}

function storelink_address($order, $kind, $isoCodes)
{
    $countryId = (int) $order[$kind . '_country_id'];
    return array(
        'firstname' => storelink_text($order[$kind . '_firstname']),
        'lastname' => storelink_text($order[$kind . '_lastname']),
        'company' => storelink_text($order[$kind . '_company']),
        'address_1' => storelink_text($order[$kind . '_address_1']),
        'address_2' => storelink_text($order[$kind . '_address_2']),
        'city' => storelink_text($order[$kind . '_city']),
        'postcode' => storelink_text($order[$kind . '_postcode']),
        'country' => storelink_text($order[$kind . '_country']),
        'country_id' => $countryId,
        'iso_code_2' => isset($isoCodes[$countryId]) ? $isoCodes[$countryId] : '',
        'zone' => storelink_text($order[$kind . '_zone']),
        'zone_id' => (int) $order[$kind . '_zone_id'],
    );
}

/** Full orders (lines, options, totals, addresses) for the given ids, in the given order. */
function storelink_load_orders(StorelinkStore $store, $orderIds, $changeTimes)
{
    if (!$orderIds) {
        return array();
    }
    $marks = implode(',', array_fill(0, count($orderIds), '?'));
    $rows = $store->db->rows(
        'SELECT o.*, os.name AS storelink_status_name FROM ' . $store->t('order') . ' o LEFT JOIN '
        . $store->t('order_status') . ' os ON os.order_status_id = o.order_status_id AND os.language_id = ?'
        . " WHERE o.order_id IN ($marks)",
        array_merge(array($store->languageId), $orderIds)
    );
    $byId = array();
    $countryIds = array();
    foreach ($rows as $row) {
        $byId[(int) $row['order_id']] = $row;
        $countryIds[(int) $row['payment_country_id']] = true;
        $countryIds[(int) $row['shipping_country_id']] = true;
    }
    $isoCodes = array();
    $countryKeys = array_keys($countryIds);
    if ($countryKeys) {
        $countryMarks = implode(',', array_fill(0, count($countryKeys), '?'));
        foreach ($store->db->rows(
            'SELECT country_id, iso_code_2 FROM ' . $store->t('country') . " WHERE country_id IN ($countryMarks)",
            $countryKeys
        ) as $country) {
            $isoCodes[(int) $country['country_id']] = storelink_text($country['iso_code_2']);
        }
    }

    $hasMaster = $store->hasColumn('order_product', 'master_id');
    $lines = array();
    foreach ($store->db->rows(
        'SELECT op.*, ' . $store->skuSql('op.product_id') . ' AS storelink_sku FROM ' . $store->t('order_product')
        . " op WHERE op.order_id IN ($marks) ORDER BY op.order_product_id",
        $orderIds
    ) as $line) {
        $lines[(int) $line['order_id']][] = $line;
    }
    $options = array();
    foreach ($store->db->rows(
        'SELECT * FROM ' . $store->t('order_option') . " WHERE order_id IN ($marks) ORDER BY order_option_id",
        $orderIds
    ) as $option) {
        $options[(int) $option['order_product_id']][] = array(
            'order_option_id' => (int) $option['order_option_id'],
            'product_option_id' => (int) $option['product_option_id'],
            'product_option_value_id' => (int) $option['product_option_value_id'],
            'name' => storelink_text($option['name']),
            'value' => storelink_text($option['value']),
            'type' => storelink_text($option['type']),
        );
    }
    $totals = array();
    foreach ($store->db->rows(
        'SELECT * FROM ' . $store->t('order_total') . " WHERE order_id IN ($marks) ORDER BY sort_order, order_total_id",
        $orderIds
    ) as $total) {
        $totals[(int) $total['order_id']][] = array(
            'code' => storelink_text($total['code']),
            'title' => storelink_text($total['title']),
            'value' => storelink_decimal($total['value'], 4),
            'sort_order' => (int) $total['sort_order'],
        );
    }

    $orders = array();
    foreach ($orderIds as $orderId) {
        if (!isset($byId[$orderId])) {
            continue;
        }
        $o = $byId[$orderId];
        $products = array();
        foreach (isset($lines[$orderId]) ? $lines[$orderId] : array() as $line) {
            $lineId = (int) $line['order_product_id'];
            $products[] = array(
                'order_product_id' => $lineId,
                'product_id' => (int) $line['product_id'],
                'master_id' => $hasMaster ? (int) $line['master_id'] : 0,
                'sku' => storelink_text($line['storelink_sku']),
                'model' => storelink_text($line['model']),
                'name' => storelink_text($line['name']),
                'quantity' => (int) $line['quantity'],
                'price' => storelink_decimal($line['price'], 4),
                'total' => storelink_decimal($line['total'], 4),
                'tax' => storelink_decimal($line['tax'], 4),
                'options' => isset($options[$lineId]) ? $options[$lineId] : array(),
            );
        }
        $shipping = storelink_method_name($o['shipping_method'], isset($o['shipping_code']) ? $o['shipping_code'] : '');
        $payment = storelink_method_name($o['payment_method'], isset($o['payment_code']) ? $o['payment_code'] : '');
        $orders[] = array(
            'order_id' => (int) $o['order_id'],
            'store_id' => (int) $o['store_id'],
            'store_name' => storelink_text($o['store_name']),
            'invoice_no' => (int) $o['invoice_no'],
            'invoice_prefix' => storelink_text($o['invoice_prefix']),
            'order_status_id' => (int) $o['order_status_id'],
            'order_status' => storelink_text($o['storelink_status_name']),
            'customer_id' => (int) $o['customer_id'],
            'customer' => array(
                'firstname' => storelink_text($o['firstname']),
                'lastname' => storelink_text($o['lastname']),
                'email' => storelink_text($o['email']),
                'telephone' => storelink_text($o['telephone']),
            ),
            'payment_address' => storelink_address($o, 'payment', $isoCodes),
            'shipping_address' => storelink_address($o, 'shipping', $isoCodes),
            'payment_method' => $payment[0],
            'payment_code' => $payment[1],
            'shipping_method' => $shipping[0],
            'shipping_code' => $shipping[1],
            'comment' => storelink_text($o['comment']),
            'total' => storelink_decimal($o['total'], 4),
            'currency_code' => storelink_text($o['currency_code']),
            'currency_value' => storelink_decimal($o['currency_value'], 8),
            'language_id' => (int) $o['language_id'],
            'date_added' => $store->toStore($o['date_added']),
            'date_modified' => $store->toStore($o['date_modified']),
            'change_time' => $store->toStore(isset($changeTimes[$orderId]) ? $changeTimes[$orderId] : $o['date_modified']),
            'products' => $products,
            'totals' => isset($totals[$orderId]) ? $totals[$orderId] : array(),
        );
    }
    return $orders;
}

/** Newest of date_modified and the newest history row: 4.1 history leaves date_modified alone. */
function storelink_change_time_sql(StorelinkStore $store)
{
    return 'GREATEST(o.date_modified, COALESCE((SELECT MAX(h.date_added) FROM ' . $store->t('order_history')
        . ' h WHERE h.order_id = o.order_id), o.date_modified))';
}

/**
 * The order query that `orders` pages through and `orders_changed` checks, from the request's
 * position (`cursor` or `since`) and status filter, without its LIMIT: array(sql, params, afterTime,
 * afterId, until).
 */
function storelink_orders_after(StorelinkStore $store, $query)
{
    $dateRe = '/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$/';
    if (isset($query['cursor'])) {
        if (!preg_match('/^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})\|([0-9]{1,10})$/', $query['cursor'], $m)) {
            throw storelink_bad_input("'cursor' is not a cursor this bridge handed out.", array('field' => 'cursor'));
        }
        $afterTime = $m[1];
        $afterId = (int) $m[2];
    } elseif (isset($query['since'])) {
        if (!preg_match($dateRe, $query['since'])) {
            throw storelink_bad_input("'since' must be a store-local time like 2024-05-01 13:45:00.", array('field' => 'since'));
        }
        // since is store time; the cursor carries the tables' own time (it is opaque to clients)
        $afterTime = $store->toData($query['since']);
        $afterId = 0;
    } else {
        throw storelink_bad_input("Give 'since' (store-local time) or a 'cursor'.", array('field' => 'since'));
    }
    $match = isset($query['match']) ? $query['match'] : 'current';
    if ($match !== 'current' && $match !== 'ever') {
        throw storelink_bad_input("'match' must be 'current' or 'ever'.", array('field' => 'match'));
    }
    $statusFilter = '';
    $statusParams = array();
    if (isset($query['statuses']) && $query['statuses'] !== '') {
        if (!preg_match('/^[0-9]{1,10}(,[0-9]{1,10}){0,49}$/', $query['statuses'])) {
            throw storelink_bad_input("'statuses' must be a comma-separated list of order status ids.", array('field' => 'statuses'));
        }
        foreach (explode(',', $query['statuses']) as $statusId) {
            $statusParams[] = (int) $statusId;
        }
        $marks = implode(',', array_fill(0, count($statusParams), '?'));
        $statusFilter = " AND (o.order_status_id IN ($marks)";
        if ($match === 'ever') {
            // An order that was ever in one of these statuses stays followed whatever it moves to.
            $statusFilter .= ' OR EXISTS (SELECT 1 FROM ' . $store->t('order_history')
                . " hs WHERE hs.order_id = o.order_id AND hs.order_status_id IN ($marks))";
            $statusParams = array_merge($statusParams, $statusParams);
        }
        $statusFilter .= ')';
    }
    // Rows changed in the current second are left for the next call: something may still change
    // within that second after we read it, and a cursor at that second would then skip it.
    $until = $store->dataNow();
    $history = $store->t('order_history');
    $sql = 'SELECT t.order_id, t.change_time FROM (SELECT o.order_id, ' . storelink_change_time_sql($store)
        . ' AS change_time FROM ' . $store->t('order') . ' o WHERE o.order_status_id > 0' . $statusFilter
        . " AND (o.date_modified >= ? OR o.order_id IN (SELECT h2.order_id FROM $history h2 WHERE h2.date_added >= ?))"
        . ') t WHERE (t.change_time > ? OR (t.change_time = ? AND t.order_id > ?)) AND t.change_time < ?'
        . ' ORDER BY t.change_time, t.order_id';
    $params = array_merge($statusParams, array($afterTime, $afterTime, $afterTime, $afterTime, $afterId, $until));
    return array($sql, $params, $afterTime, $afterId, $until);
}

function storelink_action_orders(StorelinkStore $store, $query)
{
    $limit = storelink_query_int($query, 'limit', 50, 1, STORELINK_MAX_ORDER_PAGE);
    list($sql, $params, $afterTime, $afterId, $until) = storelink_orders_after($store, $query);
    $rows = $store->db->rows($sql . ' LIMIT ' . ($limit + 1), $params);
    $hasMore = count($rows) > $limit;
    $rows = array_slice($rows, 0, $limit);
    $ids = array();
    $changeTimes = array();
    foreach ($rows as $row) {
        $ids[] = (int) $row['order_id'];
        $changeTimes[(int) $row['order_id']] = storelink_text($row['change_time']);
    }
    $cursor = $afterTime . '|' . $afterId;
    if ($rows) {
        $last = $rows[count($rows) - 1];
        $cursor = storelink_text($last['change_time']) . '|' . (int) $last['order_id'];
    }
    return array(
        'orders' => storelink_load_orders($store, $ids, $changeTimes),
        'cursor' => $cursor,
        'has_more' => $hasMore,
        'until' => $store->toStore($until),
    );
}

/**
 * 1.4.0: would `orders` with the same position and filters return anything? The same query with
 * LIMIT 1 and no order loaded, so a client can ask every few seconds without reading rows.
 */
function storelink_action_orders_changed(StorelinkStore $store, $query)
{
    list($sql, $params, $afterTime, $afterId, $until) = storelink_orders_after($store, $query);
    $rows = $store->db->rows($sql . ' LIMIT 1', $params);
    return array(
        'changed' => count($rows) > 0,
        'cursor' => $afterTime . '|' . $afterId,
        'until' => $store->toStore($until),
    );
}

function storelink_action_order(StorelinkStore $store, $query)
{
    $orderId = storelink_query_int($query, 'id', null, 1, 2147483647);
    if ($orderId === null) {
        throw storelink_bad_input("'id' is required.", array('field' => 'id'));
    }
    $changed = $store->db->row(
        'SELECT ' . storelink_change_time_sql($store) . ' AS change_time FROM ' . $store->t('order') . ' o WHERE o.order_id = ?',
        array($orderId)
    );
    $orders = $changed ? storelink_load_orders($store, array($orderId), array($orderId => storelink_text($changed['change_time']))) : array();
    if (!$orders) {
        throw new StorelinkBridgeError(404, 'order_not_found', "Order $orderId does not exist on this store.");
    }
    $order = $orders[0];
    $order['history'] = storelink_history($store, $orderId);
    return array('order' => $order);
}

function storelink_history(StorelinkStore $store, $orderId)
{
    $history = array();
    foreach ($store->db->rows(
        'SELECT h.*, os.name AS storelink_status_name FROM ' . $store->t('order_history') . ' h LEFT JOIN '
        . $store->t('order_status') . ' os ON os.order_status_id = h.order_status_id AND os.language_id = ?'
        . ' WHERE h.order_id = ? ORDER BY h.date_added, h.order_history_id',
        array($store->languageId, $orderId)
    ) as $row) {
        $history[] = array(
            'order_history_id' => (int) $row['order_history_id'],
            'order_status_id' => (int) $row['order_status_id'],
            'order_status' => storelink_text($row['storelink_status_name']),
            'notify' => (int) $row['notify'] === 1,
            'comment' => storelink_text($row['comment']),
            'date_added' => $store->toStore($row['date_added']),
        );
    }
    return $history;
}

// --------------------------------------------------------------------------------------------------
// Store facts, statuses, products
// --------------------------------------------------------------------------------------------------

/** What this bridge version can do beyond 1.0.0, for clients that talk to older files too. */
function storelink_features()
{
    return array('orders_match_ever', 'status_sets', 'uniform_auth', 'database_zone', 'orders_changed');
}

function storelink_action_info(StorelinkStore $store)
{
    $currencies = array();
    foreach ($store->db->rows(
        'SELECT code, title, value, status, decimal_place FROM ' . $store->t('currency') . ' ORDER BY code'
    ) as $row) {
        $currencies[] = array(
            'code' => storelink_text($row['code']),
            'title' => storelink_text($row['title']),
            'value' => storelink_decimal($row['value'], 8),
            'decimal_place' => (int) $row['decimal_place'],
            'status' => (int) $row['status'] === 1,
        );
    }
    $languages = array();
    foreach ($store->db->rows(
        'SELECT language_id, code, name, status FROM ' . $store->t('language') . ' ORDER BY sort_order, language_id'
    ) as $row) {
        $languages[] = array(
            'language_id' => (int) $row['language_id'],
            'code' => storelink_text($row['code']),
            'name' => storelink_text($row['name']),
            'status' => (int) $row['status'] === 1,
        );
    }
    $stores = array(array(
        'store_id' => 0,
        'name' => $store->setting('config_name'),
        'url' => defined('HTTP_SERVER') ? (string) HTTP_SERVER : '',
    ));
    foreach ($store->db->rows('SELECT store_id, name, url FROM ' . $store->t('store') . ' ORDER BY store_id') as $row) {
        $stores[] = array(
            'store_id' => (int) $row['store_id'],
            'name' => storelink_text($row['name']),
            'url' => storelink_text($row['url']),
        );
    }
    return array(
        'name' => STORELINK_BRIDGE_NAME,
        'bridge_version' => STORELINK_BRIDGE_VERSION,
        'opencart_version' => storelink_opencart_version(),
        'schema_family' => $store->family,
        'currency' => $store->setting('config_currency'),
        'currencies' => $currencies,
        'config_tax' => $store->setting('config_tax') === '1',
        'timezone' => $store->timezone->getName(),
        'timezone_source' => $store->timezoneSource,
        'php_timezone' => $store->phpTimezone,
        'database_utc_offset' => $store->databaseOffset,
        'database_time_zone' => $store->databaseTimeZone,
        'dates_written_in' => $store->family === '2.x' ? 'database' : 'store',
        'language_id' => $store->languageId,
        'languages' => $languages,
        'stores' => $stores,
        'default_order_status_id' => (int) $store->setting('config_order_status_id', '0'),
        'processing_status_ids' => $store->statusIds('config_processing_status'),
        'complete_status_ids' => $store->statusIds('config_complete_status'),
        'features' => storelink_features(),
        'server_time' => $store->now(),
        'limits' => array(
            'order_page' => STORELINK_MAX_ORDER_PAGE,
            'product_page' => STORELINK_MAX_PRODUCT_PAGE,
            'batch_items' => STORELINK_MAX_BATCH_ITEMS,
        ),
    );
}

function storelink_action_statuses(StorelinkStore $store)
{
    $statuses = array();
    foreach ($store->db->rows(
        'SELECT order_status_id, name FROM ' . $store->t('order_status') . ' WHERE language_id = ? ORDER BY order_status_id',
        array($store->languageId)
    ) as $row) {
        $statuses[] = array('order_status_id' => (int) $row['order_status_id'], 'name' => storelink_text($row['name']));
    }
    return array('statuses' => $statuses);
}

function storelink_action_products(StorelinkStore $store, $query)
{
    $limit = storelink_query_int($query, 'limit', 100, 1, STORELINK_MAX_PRODUCT_PAGE);
    $after = storelink_query_int($query, 'after', 0, 0, 2147483647);
    $hasMaster = $store->hasColumn('product', 'master_id');
    $rows = $store->db->rows(
        'SELECT p.product_id, p.model, p.quantity, p.price, p.status, p.tax_class_id, p.subtract, '
        . ($hasMaster ? 'p.master_id' : '0 AS master_id') . ', ' . $store->skuSql('p.product_id') . ' AS storelink_sku, '
        . 'pd.name AS storelink_name FROM ' . $store->t('product') . ' p LEFT JOIN ' . $store->t('product_description')
        . ' pd ON pd.product_id = p.product_id AND pd.language_id = ? WHERE p.product_id > ? ORDER BY p.product_id LIMIT '
        . ($limit + 1),
        array($store->languageId, $after)
    );
    $hasMore = count($rows) > $limit;
    $rows = array_slice($rows, 0, $limit);
    $ids = array();
    foreach ($rows as $row) {
        $ids[] = (int) $row['product_id'];
    }
    $options = array();
    if ($ids) {
        $marks = implode(',', array_fill(0, count($ids), '?'));
        $values = $store->db->rows(
            'SELECT pov.*, po.required, od.name AS storelink_option_name, ovd.name AS storelink_value_name FROM '
            . $store->t('product_option_value') . ' pov JOIN ' . $store->t('product_option')
            . ' po ON po.product_option_id = pov.product_option_id LEFT JOIN ' . $store->t('option_description')
            . ' od ON od.option_id = pov.option_id AND od.language_id = ? LEFT JOIN ' . $store->t('option_value_description')
            . ' ovd ON ovd.option_value_id = pov.option_value_id AND ovd.language_id = ?'
            . " WHERE pov.product_id IN ($marks) ORDER BY pov.product_id, pov.product_option_id, pov.product_option_value_id",
            array_merge(array($store->languageId, $store->languageId), $ids)
        );
        foreach ($values as $value) {
            $productId = (int) $value['product_id'];
            $optionId = (int) $value['product_option_id'];
            if (!isset($options[$productId][$optionId])) {
                $options[$productId][$optionId] = array(
                    'product_option_id' => $optionId,
                    'option_id' => (int) $value['option_id'],
                    'name' => storelink_text($value['storelink_option_name']),
                    'required' => (int) $value['required'] === 1,
                    'values' => array(),
                );
            }
            $options[$productId][$optionId]['values'][] = array(
                'product_option_value_id' => (int) $value['product_option_value_id'],
                'option_value_id' => (int) $value['option_value_id'],
                'name' => storelink_text($value['storelink_value_name']),
                'quantity' => (int) $value['quantity'],
                'subtract' => (int) $value['subtract'] === 1,
                'price' => storelink_decimal($value['price'], 4),
                'price_prefix' => storelink_text($value['price_prefix']),
            );
        }
    }
    $products = array();
    foreach ($rows as $row) {
        $productId = (int) $row['product_id'];
        $products[] = array(
            'product_id' => $productId,
            'master_id' => (int) $row['master_id'],
            'sku' => storelink_text($row['storelink_sku']),
            'model' => storelink_text($row['model']),
            'name' => storelink_text($row['storelink_name']),
            'quantity' => (int) $row['quantity'],
            'price' => storelink_decimal($row['price'], 4),
            'status' => (int) $row['status'] === 1,
            'subtract' => (int) $row['subtract'] === 1,
            'tax_class_id' => (int) $row['tax_class_id'],
            'options' => isset($options[$productId]) ? array_values($options[$productId]) : array(),
        );
    }
    $nextAfter = $rows ? (int) $rows[count($rows) - 1]['product_id'] : $after;
    return array('products' => $products, 'after' => $nextAfter, 'has_more' => $hasMore);
}

// --------------------------------------------------------------------------------------------------
// Writes
// --------------------------------------------------------------------------------------------------

function storelink_batch_items($body)
{
    if (!isset($body['items']) || !is_array($body['items']) || array_values($body['items']) !== $body['items']) {
        throw storelink_bad_input("The body must be {\"items\": [...]}.", array('field' => 'items'));
    }
    $count = count($body['items']);
    if ($count < 1 || $count > STORELINK_MAX_BATCH_ITEMS) {
        throw storelink_bad_input('A batch holds 1 to ' . STORELINK_MAX_BATCH_ITEMS . ' items.', array('field' => 'items'));
    }
    foreach ($body['items'] as $index => $item) {
        if (!is_array($item) || ($item && array_values($item) === $item)) {
            throw storelink_bad_input("Item $index must be an object.", array('index' => $index));
        }
    }
    return $body['items'];
}

function storelink_not_found($index, $productId, $valueId)
{
    $what = $valueId === null ? "Product $productId" : "Option value $valueId of product $productId";
    return array(
        'index' => $index,
        'product_id' => $productId,
        'product_option_value_id' => $valueId,
        'ok' => false,
        'error' => array('code' => 'not_found', 'message' => "$what does not exist on this store."),
    );
}

function storelink_action_set_stock(StorelinkStore $store, $body)
{
    $items = array();
    foreach (storelink_batch_items($body) as $index => $item) {
        $items[] = array(
            storelink_json_int($item, 'product_id', $index, 1, 2147483647, true),
            storelink_json_int($item, 'product_option_value_id', $index, 1, 2147483647, false),
            storelink_json_int($item, 'quantity', $index, 0, STORELINK_MAX_QUANTITY, true),
        );
    }
    $results = array();
    $store->db->begin();
    try {
        foreach ($items as $index => $item) {
            list($productId, $valueId, $quantity) = $item;
            if ($valueId === null) {
                $current = $store->db->row('SELECT quantity FROM ' . $store->t('product') . ' WHERE product_id = ?', array($productId));
                if ($current !== null) {
                    $store->db->execute(
                        'UPDATE ' . $store->t('product') . ' SET quantity = ? WHERE product_id = ?',
                        array($quantity, $productId)
                    );
                }
            } else {
                $current = $store->db->row(
                    'SELECT quantity FROM ' . $store->t('product_option_value') . ' WHERE product_option_value_id = ? AND product_id = ?',
                    array($valueId, $productId)
                );
                if ($current !== null) {
                    $store->db->execute(
                        'UPDATE ' . $store->t('product_option_value') . ' SET quantity = ? WHERE product_option_value_id = ? AND product_id = ?',
                        array($quantity, $valueId, $productId)
                    );
                }
            }
            if ($current === null) {
                $results[] = storelink_not_found($index, $productId, $valueId);
                continue;
            }
            $results[] = array(
                'index' => $index,
                'product_id' => $productId,
                'product_option_value_id' => $valueId,
                'ok' => true,
                'previous' => (int) $current['quantity'],
                'quantity' => $quantity,
            );
        }
        $store->db->commit();
    } catch (Exception $e) {
        $store->db->rollback();
        throw $e;
    }
    return array('results' => $results);
}

function storelink_action_set_price(StorelinkStore $store, $body)
{
    $items = array();
    foreach (storelink_batch_items($body) as $index => $item) {
        $productId = storelink_json_int($item, 'product_id', $index, 1, 2147483647, true);
        $valueId = storelink_json_int($item, 'product_option_value_id', $index, 1, 2147483647, false);
        if (!array_key_exists('price', $item)) {
            throw storelink_bad_input("Item $index: 'price' is required.", array('index' => $index, 'field' => 'price'));
        }
        $items[] = array($productId, $valueId, storelink_money_units($item['price'], $index));
    }
    $results = array();
    $product = $store->t('product');
    $values = $store->t('product_option_value');
    $store->db->begin();
    try {
        foreach ($items as $index => $item) {
            list($productId, $valueId, $units) = $item;
            $price = storelink_units_to_decimal($units);
            $current = $store->db->row("SELECT price FROM $product WHERE product_id = ?", array($productId));
            if ($valueId === null) {
                if ($current === null) {
                    $results[] = storelink_not_found($index, $productId, null);
                    continue;
                }
                $store->db->execute("UPDATE $product SET price = ? WHERE product_id = ?", array($price, $productId));
                $results[] = array(
                    'index' => $index,
                    'product_id' => $productId,
                    'product_option_value_id' => null,
                    'ok' => true,
                    'previous' => storelink_decimal($current['price'], 4),
                    'price' => $price,
                );
                continue;
            }
            $option = $store->db->row(
                "SELECT price, price_prefix FROM $values WHERE product_option_value_id = ? AND product_id = ?",
                array($valueId, $productId)
            );
            if ($current === null || $option === null) {
                $results[] = storelink_not_found($index, $productId, $valueId);
                continue;
            }
            // OpenCart keeps an option value's price as a +/- delta on the product price.
            $delta = $units - storelink_decimal_to_units($current['price']);
            $prefix = $delta < 0 ? '-' : '+';
            $store->db->execute(
                "UPDATE $values SET price = ?, price_prefix = ? WHERE product_option_value_id = ? AND product_id = ?",
                array(storelink_units_to_decimal(abs($delta)), $prefix, $valueId, $productId)
            );
            $previousDelta = storelink_decimal_to_units($option['price']) * ($option['price_prefix'] === '-' ? -1 : 1);
            $results[] = array(
                'index' => $index,
                'product_id' => $productId,
                'product_option_value_id' => $valueId,
                'ok' => true,
                'previous' => storelink_units_to_decimal(storelink_decimal_to_units($current['price']) + $previousDelta),
                'price' => $price,
                'price_prefix' => $prefix,
                'price_delta' => storelink_units_to_decimal(abs($delta)),
            );
        }
        $store->db->commit();
    } catch (Exception $e) {
        $store->db->rollback();
        throw $e;
    }
    return array('results' => $results);
}

function storelink_action_add_history(StorelinkStore $store, $body)
{
    $orderId = storelink_json_int($body, 'order_id', null, 1, 2147483647, true);
    $statusId = storelink_json_int($body, 'order_status_id', null, 1, 2147483647, true);
    $comment = isset($body['comment']) ? $body['comment'] : '';
    if (!is_string($comment) || preg_match_all('/./su', $comment) > STORELINK_MAX_COMMENT_CHARS) {
        throw storelink_bad_input(
            "'comment' must be text of at most " . STORELINK_MAX_COMMENT_CHARS . ' characters.',
            array('field' => 'comment')
        );
    }
    $notify = isset($body['notify']) ? $body['notify'] : false;
    if (!is_bool($notify)) {
        throw storelink_bad_input("'notify' must be true or false.", array('field' => 'notify'));
    }
    $order = $store->db->row('SELECT order_id FROM ' . $store->t('order') . ' WHERE order_id = ?', array($orderId));
    if ($order === null) {
        throw new StorelinkBridgeError(404, 'order_not_found', "Order $orderId does not exist on this store.");
    }
    $status = $store->db->row(
        'SELECT order_status_id FROM ' . $store->t('order_status') . ' WHERE order_status_id = ? LIMIT 1',
        array($statusId)
    );
    if ($status === null) {
        throw new StorelinkBridgeError(400, 'unknown_status', "Order status $statusId does not exist on this store.");
    }
    // Stored the way OpenCart stores anything posted from a form: trimmed and HTML-escaped.
    $stored = trim(htmlspecialchars($comment, ENT_COMPAT, 'UTF-8'));
    $now = $store->dataNow();
    $store->db->begin();
    try {
        $store->db->execute(
            'INSERT INTO ' . $store->t('order_history')
            . ' (order_id, order_status_id, notify, comment, date_added) VALUES (?, ?, ?, ?, ?)',
            array($orderId, $statusId, $notify ? 1 : 0, $stored, $now)
        );
        $historyId = $store->db->lastInsertId();
        $store->db->execute(
            'UPDATE ' . $store->t('order') . ' SET order_status_id = ?, date_modified = ? WHERE order_id = ?',
            array($statusId, $now, $orderId)
        );
        $store->db->commit();
    } catch (Exception $e) {
        $store->db->rollback();
        throw $e;
    }
    return array(
        'order_history_id' => $historyId,
        'order_id' => $orderId,
        'order_status_id' => $statusId,
        'date_added' => $store->toStore($now),
        'mail_sent' => false,
    );
}

// --------------------------------------------------------------------------------------------------
// Entry point
// --------------------------------------------------------------------------------------------------

function storelink_read_body()
{
    $declared = isset($_SERVER['CONTENT_LENGTH']) ? (int) $_SERVER['CONTENT_LENGTH'] : 0;
    if ($declared > STORELINK_MAX_BODY_BYTES) {
        throw new StorelinkBridgeError(413, 'body_too_large', 'The request body is larger than ' . STORELINK_MAX_BODY_BYTES . ' bytes.');
    }
    $stream = fopen('php://input', 'rb');
    $body = $stream ? stream_get_contents($stream, STORELINK_MAX_BODY_BYTES + 1) : '';
    if ($stream) {
        fclose($stream);
    }
    if ($body === false) {
        $body = '';
    }
    if (strlen($body) > STORELINK_MAX_BODY_BYTES) {
        throw new StorelinkBridgeError(413, 'body_too_large', 'The request body is larger than ' . STORELINK_MAX_BODY_BYTES . ' bytes.');
    }
    return $body;
}

function storelink_main()
{
    $method = isset($_SERVER['REQUEST_METHOD']) ? strtoupper((string) $_SERVER['REQUEST_METHOD']) : 'GET';
    $auth = array(
        'user' => storelink_header('X-Storelink-User'),
        'timestamp' => storelink_header('X-Storelink-Timestamp'),
        'nonce' => storelink_header('X-Storelink-Nonce'),
        'signature' => storelink_header('X-Storelink-Signature'),
    );
    $present = count(array_filter($auth, 'is_string'));
    if ($present === 0 && ($method === 'GET' || $method === 'HEAD')) {
        // Unsigned visitors (a browser, an uptime check) learn only what this file is.
        storelink_reply(200, array('name' => STORELINK_BRIDGE_NAME, 'bridge_version' => STORELINK_BRIDGE_VERSION));
        return;
    }
    if ($present < 4) {
        throw new StorelinkUnauthorized();
    }
    // The body is read before the signature can be checked; its limit protects the server and says
    // nothing about the store.
    $body = storelink_read_body();
    $auth['user'] = rawurldecode($auth['user']);

    $requestUri = isset($_SERVER['REQUEST_URI']) ? (string) $_SERVER['REQUEST_URI'] : '/';
    $path = rawurldecode((string) parse_url('http://x' . $requestUri, PHP_URL_PATH));
    $queryString = isset($_SERVER['QUERY_STRING']) ? (string) $_SERVER['QUERY_STRING'] : '';
    $pairs = storelink_query_pairs($queryString);

    $config = storelink_load_config();
    $db = storelink_authenticate($config, $method, $path, storelink_canonical_query($pairs), $body, $auth);

    if ($method !== 'GET' && $method !== 'POST') {
        throw new StorelinkBridgeError(405, 'method_not_allowed', 'Only GET and POST are accepted.');
    }
    $query = array();
    foreach ($pairs as $pair) {
        if (!preg_match('/^[a-z_]{1,32}$/', $pair[0]) || array_key_exists($pair[0], $query)) {
            throw new StorelinkBridgeError(400, 'bad_request', 'The query string has an unknown or repeated parameter name.');
        }
        $query[$pair[0]] = $pair[1];
    }
    $store = new StorelinkStore($db, $config['prefix']);

    $action = isset($query['action']) ? $query['action'] : '';
    $reads = array('info', 'statuses', 'orders', 'orders_changed', 'order', 'products');
    $writes = array('set_stock', 'set_price', 'add_history');
    if (!in_array($action, $reads, true) && !in_array($action, $writes, true)) {
        throw new StorelinkBridgeError(404, 'unknown_action', 'Unknown action; this bridge knows: ' . implode(', ', array_merge($reads, $writes)) . '.');
    }
    $isWrite = in_array($action, $writes, true);
    if ($isWrite !== ($method === 'POST')) {
        throw new StorelinkBridgeError(405, 'method_not_allowed', "Action '$action' needs " . ($isWrite ? 'POST' : 'GET') . '.');
    }
    $payload = null;
    if ($isWrite) {
        $payload = json_decode($body, true, 16);
        if (!is_array($payload) || ($payload && array_values($payload) === $payload) || trim($body) === '[]') {
            throw new StorelinkBridgeError(400, 'bad_json', 'The request body must be a JSON object.');
        }
    }
    switch ($action) {
        case 'info':
            $result = storelink_action_info($store);
            break;
        case 'statuses':
            $result = storelink_action_statuses($store);
            break;
        case 'orders':
            $result = storelink_action_orders($store, $query);
            break;
        case 'orders_changed':
            $result = storelink_action_orders_changed($store, $query);
            break;
        case 'order':
            $result = storelink_action_order($store, $query);
            break;
        case 'products':
            $result = storelink_action_products($store, $query);
            break;
        case 'set_stock':
            $result = storelink_action_set_stock($store, $payload);
            break;
        case 'set_price':
            $result = storelink_action_set_price($store, $payload);
            break;
        default:
            $result = storelink_action_add_history($store, $payload);
    }
    storelink_reply(200, array_merge(array('ok' => true), $result));
}

try {
    storelink_main();
} catch (StorelinkBridgeError $error) {
    storelink_error_reply($error);
} catch (Exception $error) {
    error_log('storelink-bridge: ' . get_class($error) . ' ' . $error->getMessage());
    storelink_internal_error();
} catch (Throwable $error) {
    error_log('storelink-bridge: ' . get_class($error) . ' ' . $error->getMessage());
    storelink_internal_error();
}
