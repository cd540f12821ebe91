-- OpenCart 4.1.0.0 – 4.1.0.4 (schema family 4.1): the tables the Storelink bridge reads and writes.
-- Written from reference/opencart-schema.md (columns and types per version). `country`, 4.1 `api_history`,
-- `option_description` are real OpenCart tables whose columns that reference does not list (kept minimal).
-- `{{prefix}}` is replaced by the store's DB_PREFIX. Used by the MariaDB tests and, translated
-- to SQLite, by the sandbox (connectors/sandbox/opencart.py).

CREATE TABLE `{{prefix}}api` (
  `api_id` int(11) AUTO_INCREMENT,
  `username` varchar(64),
  `key` text,
  `status` tinyint(1),
  `date_added` datetime,
  `date_modified` datetime,
  PRIMARY KEY (`api_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}api_ip` (
  `api_ip_id` int(11) AUTO_INCREMENT,
  `api_id` int(11),
  `ip` varchar(40),
  PRIMARY KEY (`api_ip_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}api_history` (
  `api_history_id` int(11) AUTO_INCREMENT,
  `api_id` int(11),
  `call` varchar(128),
  `ip` varchar(40),
  `date_added` datetime,
  PRIMARY KEY (`api_history_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}setting` (
  `setting_id` int(11) AUTO_INCREMENT,
  `store_id` int(11) DEFAULT '0',
  `code` varchar(128),
  `key` varchar(128),
  `value` mediumtext,
  `serialized` tinyint(1),
  PRIMARY KEY (`setting_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}currency` (
  `currency_id` int(11) AUTO_INCREMENT,
  `title` varchar(32),
  `code` varchar(3),
  `symbol_left` varchar(12),
  `symbol_right` varchar(12),
  `decimal_place` int(1),
  `value` double(15,8),
  `status` tinyint(1),
  `date_modified` datetime,
  PRIMARY KEY (`currency_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}store` (
  `store_id` int(11) AUTO_INCREMENT,
  `name` varchar(64),
  `url` varchar(255),
  PRIMARY KEY (`store_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}language` (
  `language_id` int(11) AUTO_INCREMENT,
  `name` varchar(32),
  `code` varchar(5),
  `locale` varchar(255),
  `sort_order` int(3) DEFAULT '0',
  `status` tinyint(1),
  `extension` varchar(255),
  PRIMARY KEY (`language_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order_status` (
  `order_status_id` int(11) AUTO_INCREMENT,
  `language_id` int(11),
  `name` varchar(32),
  PRIMARY KEY (`order_status_id`, `language_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}country` (
  `country_id` int(11) AUTO_INCREMENT,
  `name` varchar(128),
  `iso_code_2` varchar(2),
  `iso_code_3` varchar(3),
  `status` tinyint(1) DEFAULT '1',
  PRIMARY KEY (`country_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order` (
  `order_id` int(11) AUTO_INCREMENT,
  `invoice_no` int(11) DEFAULT '0',
  `invoice_prefix` varchar(26),
  `store_id` int(11) DEFAULT '0',
  `store_name` varchar(64),
  `store_url` varchar(255),
  `customer_id` int(11) DEFAULT '0',
  `customer_group_id` int(11) DEFAULT '0',
  `firstname` varchar(32),
  `lastname` varchar(32),
  `email` varchar(96),
  `telephone` varchar(32),
  `custom_field` text,
  `payment_firstname` varchar(32),
  `payment_lastname` varchar(32),
  `payment_company` varchar(60),
  `payment_address_1` varchar(128),
  `payment_address_2` varchar(128),
  `payment_city` varchar(128),
  `payment_postcode` varchar(10),
  `payment_country` varchar(128),
  `payment_country_id` int(11),
  `payment_zone` varchar(128),
  `payment_zone_id` int(11),
  `payment_address_format` text,
  `payment_custom_field` text,
  `payment_method` text,
  `shipping_firstname` varchar(32),
  `shipping_lastname` varchar(32),
  `shipping_company` varchar(60),
  `shipping_address_1` varchar(128),
  `shipping_address_2` varchar(128),
  `shipping_city` varchar(128),
  `shipping_postcode` varchar(10),
  `shipping_country` varchar(128),
  `shipping_country_id` int(11),
  `shipping_zone` varchar(128),
  `shipping_zone_id` int(11),
  `shipping_address_format` text,
  `shipping_custom_field` text,
  `shipping_method` text,
  `comment` text,
  `total` decimal(15,4) DEFAULT '0.0000',
  `order_status_id` int(11) DEFAULT '0',
  `affiliate_id` int(11),
  `commission` decimal(15,4),
  `marketing_id` int(11),
  `tracking` varchar(64),
  `language_id` int(11),
  `currency_id` int(11),
  `currency_code` varchar(3),
  `currency_value` decimal(15,8) DEFAULT '1.00000000',
  `ip` varchar(40),
  `forwarded_ip` varchar(40),
  `user_agent` varchar(255),
  `accept_language` varchar(255),
  `date_added` datetime,
  `date_modified` datetime,
  `subscription_id` int(11),
  `transaction_id` varchar(100),
  `payment_address_id` int(11),
  `shipping_address_id` int(11),
  `language_code` varchar(5),
  PRIMARY KEY (`order_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order_product` (
  `order_product_id` int(11) AUTO_INCREMENT,
  `order_id` int(11),
  `product_id` int(11),
  `master_id` int(11),
  `name` varchar(255),
  `model` varchar(64),
  `quantity` int(4),
  `price` decimal(15,4) DEFAULT '0.0000',
  `total` decimal(15,4) DEFAULT '0.0000',
  `tax` decimal(15,4) DEFAULT '0.0000',
  `reward` int(8),
  PRIMARY KEY (`order_product_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order_option` (
  `order_option_id` int(11) AUTO_INCREMENT,
  `order_id` int(11),
  `order_product_id` int(11),
  `product_option_id` int(11),
  `product_option_value_id` int(11) DEFAULT '0',
  `name` varchar(255),
  `value` text,
  `type` varchar(32),
  PRIMARY KEY (`order_option_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order_total` (
  `order_total_id` int(10) AUTO_INCREMENT,
  `order_id` int(11),
  `extension` varchar(255),
  `code` varchar(32),
  `title` varchar(255),
  `value` decimal(15,4) DEFAULT '0.0000',
  `sort_order` int(3),
  PRIMARY KEY (`order_total_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}order_history` (
  `order_history_id` int(11) AUTO_INCREMENT,
  `order_id` int(11),
  `order_status_id` int(11),
  `notify` tinyint(1) DEFAULT '0',
  `comment` text,
  `date_added` datetime,
  PRIMARY KEY (`order_history_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product` (
  `product_id` int(11) AUTO_INCREMENT,
  `master_id` int(11) DEFAULT '0',
  `model` varchar(64),
  `location` varchar(128),
  `variant` text,
  `override` text,
  `quantity` int(4) DEFAULT '0',
  `stock_status_id` int(11),
  `image` varchar(255),
  `manufacturer_id` int(11),
  `shipping` tinyint(1) DEFAULT '1',
  `price` decimal(15,4) DEFAULT '0.0000',
  `points` int(8) DEFAULT '0',
  `tax_class_id` int(11),
  `date_available` date,
  `weight` decimal(15,8) DEFAULT '0.00000000',
  `weight_class_id` int(11) DEFAULT '0',
  `length` decimal(15,8) DEFAULT '0.00000000',
  `width` decimal(15,8) DEFAULT '0.00000000',
  `height` decimal(15,8) DEFAULT '0.00000000',
  `length_class_id` int(11) DEFAULT '0',
  `subtract` tinyint(1) DEFAULT '1',
  `minimum` int(11) DEFAULT '1',
  `rating` int(1),
  `sort_order` int(11) DEFAULT '0',
  `status` tinyint(1) DEFAULT '0',
  `date_added` datetime,
  `date_modified` datetime,
  PRIMARY KEY (`product_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product_description` (
  `product_id` int(11),
  `language_id` int(11),
  `name` varchar(255),
  `description` mediumtext,
  `tag` text,
  `meta_title` varchar(255),
  `meta_description` varchar(255),
  `meta_keyword` varchar(255),
  PRIMARY KEY (`product_id`, `language_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product_to_store` (
  `product_id` int(11),
  `store_id` int(11) DEFAULT '0',
  PRIMARY KEY (`product_id`, `store_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product_option` (
  `product_option_id` int(11) AUTO_INCREMENT,
  `product_id` int(11),
  `option_id` int(11),
  `value` text,
  `required` tinyint(1),
  PRIMARY KEY (`product_option_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product_option_value` (
  `product_option_value_id` int(11) AUTO_INCREMENT,
  `product_option_id` int(11),
  `product_id` int(11),
  `option_id` int(11),
  `option_value_id` int(11),
  `quantity` int(3),
  `subtract` tinyint(1),
  `price` decimal(15,4),
  `price_prefix` varchar(1),
  `points` int(8),
  `points_prefix` varchar(1),
  `weight` decimal(15,8),
  `weight_prefix` varchar(1),
  PRIMARY KEY (`product_option_value_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}option_description` (
  `option_id` int(11),
  `language_id` int(11),
  `name` varchar(128),
  PRIMARY KEY (`option_id`, `language_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}option_value_description` (
  `option_value_id` int(11),
  `language_id` int(11),
  `option_id` int(11),
  `name` varchar(128),
  PRIMARY KEY (`option_value_id`, `language_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}tax_class` (
  `tax_class_id` int(11) AUTO_INCREMENT,
  `title` varchar(32),
  `description` varchar(255),
  PRIMARY KEY (`tax_class_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}product_code` (
  `product_code_id` int(11) AUTO_INCREMENT,
  `product_id` int(11),
  `code` varchar(48),
  `value` varchar(255),
  PRIMARY KEY (`product_code_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `{{prefix}}identifier` (
  `identifier_id` int(11) AUTO_INCREMENT,
  `name` varchar(64),
  `code` varchar(48),
  `validation` varchar(255),
  `status` tinyint(1) DEFAULT '0',
  PRIMARY KEY (`identifier_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
