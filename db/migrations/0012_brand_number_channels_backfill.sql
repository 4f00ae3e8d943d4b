-- Links made before channels were kept per brand served every channel of their number, as before.
UPDATE `brand_numbers` SET `channels` = (SELECT `channels` FROM `numbers` WHERE `numbers`.`id` = `brand_numbers`.`number_id`);
